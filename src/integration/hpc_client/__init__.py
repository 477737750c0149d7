"""The side of the integration that runs on the processing nodes: image modules and (next) the job runner.

Nothing here imports the daemon: a cluster node installs ``dassco-integration[hpc]`` and runs
``integration hpc ...``; the layers allowed are ``errors`` and ``domain`` (tests/test_layers.py).
"""
