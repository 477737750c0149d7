"""The barcode reader: generated sheets in every orientation, real codes from pyzbar's wheel, and the rules
that keep a wrong value out (check digits, conflicts, untrusted single reads)."""

from __future__ import annotations

import functools
from pathlib import Path

import pytest
from PIL import Image

from imaging_support import add_code128, degraded, loaded, sheet
from integration.errors import ConfigError, GroupHeld
from integration.hpc_client.modules import barcode as barcode_module
from integration.hpc_client.modules._barcode_rules import load_rules
from integration.hpc_client.modules._decoders import Box, Read
from integration.hpc_client.modules.barcode import BarcodeSettings, read_barcodes, read_barcodes_file

PYZBAR_TESTS = Path(__import__("pyzbar").__file__).parent / "tests"
_PAPER = (238, 232, 212)


@pytest.mark.parametrize("angle", [0, 90, 180, 270, 5, -5])
def test_generated_sheet_is_read_in_every_orientation(angle: int) -> None:
    image, _ = sheet(width=1500, height=2250)
    turned = image.rotate(angle, expand=True, fillcolor=(52, 54, 58)) if angle else image
    result = read_barcodes(loaded(turned), institution="NHMD")
    assert result.barcodes == ["NHMD-042137"]
    assert result.asset_subject == "specimen"
    assert not result.MSO
    assert not result.MOS
    assert not result.not_found
    assert result.codes[0].symbology == "code128"


def test_a_large_sheet_is_read_on_the_reduced_copy_and_stops_there() -> None:
    image, _ = sheet(width=3000, height=4500)
    result = read_barcodes(loaded(image), institution="NHMD")
    assert result.barcodes == ["NHMD-042137"]
    assert result.passes == ["reduced"]
    left, top, right, bottom = result.codes[0].box  # mapped back onto the full-size image: top left sticker
    assert left < 600
    assert top < 600
    assert right > left
    assert bottom > top


def test_blur_and_jpeg_artefacts() -> None:
    image, _ = sheet(width=2000, height=3000, barcode="NHMD-000777")
    result = read_barcodes(loaded(degraded(image)), institution="NHMD")
    assert result.barcodes == ["NHMD-000777"]


def test_two_specimen_codes_make_a_multispecimen_sheet() -> None:
    image, _ = sheet(width=1500, height=2250, barcode="NHMD-100001")
    image = add_code128(image, "NHMD-100002", at=(800, 1000))
    result = read_barcodes(loaded(image), institution="NHMD")
    assert sorted(result.barcodes) == ["NHMD-100001", "NHMD-100002"]
    assert result.MSO is True


def test_a_disposable_code_marks_mos_and_a_label_alone_is_a_label() -> None:
    image, _ = sheet(width=1500, height=2250, barcode="NHMD-100001")
    with_label = read_barcodes(loaded(add_code128(image, "MOS-4711", at=(800, 1000))), institution="NHMD")
    assert with_label.MOS
    assert with_label.disposable == "MOS-4711"
    assert with_label.asset_subject == "specimen"
    assert with_label.label is False
    blank = Image.new("RGB", (1200, 900), _PAPER)
    label_only = read_barcodes(loaded(add_code128(blank, "MOS-4711", at=(200, 300))), institution="NHMD")
    assert label_only.asset_subject == "label"
    assert label_only.label is True
    assert label_only.barcodes == ["MOS-4711"]


def test_a_colour_chart_is_a_device_target_only_when_the_rules_say_so() -> None:
    blank = Image.new("RGB", (1200, 900), _PAPER)
    target = read_barcodes(loaded(add_code128(blank, "DT-CHART-7", at=(200, 300))), institution="NHMD")
    assert target.asset_subject == "device target"
    chart_without_code = Image.new("RGB", (1200, 900), _PAPER)
    for k, colour in enumerate([(115, 82, 68), (98, 122, 157), (87, 108, 67), (214, 126, 44)]):
        chart_without_code.paste(colour, (100 + 120 * k, 300, 200 + 120 * k, 400))
    nothing = read_barcodes(loaded(chart_without_code), institution="NHMD")
    assert nothing.asset_subject == ""
    assert nothing.not_found
    assert nothing.barcodes == []


def test_a_sheet_without_a_code_says_not_found_after_every_pass() -> None:
    image = Image.new("RGB", (1500, 2250), _PAPER)
    result = read_barcodes(loaded(image), institution="NHMD")
    assert result.not_found
    assert result.barcodes == []
    assert result.codes == []
    assert result.passes == ["full", "tiles", "skew"]


def test_a_code_no_rule_knows_is_reported_as_other_and_decides_nothing() -> None:
    blank = Image.new("RGB", (1200, 900), _PAPER)
    result = read_barcodes(loaded(add_code128(blank, "XYZ 123", at=(200, 300))), institution="NHMD")
    assert [code.role for code in result.codes] == ["other"]
    assert result.asset_subject == ""
    assert result.barcodes == []
    assert not result.not_found


def test_pyzbar_wheel_images() -> None:
    two = read_barcodes_file(PYZBAR_TESTS / "code128.png")
    assert sorted(code.value for code in two.codes) == ["Foramenifera", "Rana temporaria"]
    null = read_barcodes_file(PYZBAR_TESTS / "code128_null_character.png")
    assert [code.value for code in null.codes] == ["Hello\x00Goodbye"]
    qr = read_barcodes_file(PYZBAR_TESTS / "qrcode.png")
    assert [code.value for code in qr.codes] == ["Thalassiodracon"]
    rotated = read_barcodes_file(PYZBAR_TESTS / "qrcode_rotated.png")
    assert {code.value for code in rotated.codes} == {"Thalassiodracon"}
    empty = read_barcodes_file(PYZBAR_TESTS / "empty.png")
    assert empty.not_found
    assert empty.conflicts == []


def _reads(*reads: Read) -> list[tuple[Read, barcode_module.Pass]]:
    return [(read, "full") for read in reads]


def test_two_values_for_one_symbol_are_a_conflict_and_neither_is_reported() -> None:
    box = Box(100, 100, 400, 130)
    codes, conflicts = barcode_module._resolve(
        _reads(Read("NHMD-000001", "code128", box, "zxing"), Read("NHMD-000007", "code128", box, "pyzbar")),
        load_rules(),
        "NHMD",
    )
    assert codes == []
    assert [conflict.values for conflict in conflicts] == [("NHMD-000001", "NHMD-000007")]


def test_one_decoder_missing_a_code_is_not_a_conflict() -> None:
    codes, conflicts = barcode_module._resolve(
        _reads(Read("NHMD-000001", "code128", Box(100, 100, 400, 130), "zxing")), load_rules(), "NHMD"
    )
    assert [code.identifier for code in codes] == ["NHMD-000001"]
    assert conflicts == []


def test_codes_at_different_places_are_two_codes() -> None:
    codes, conflicts = barcode_module._resolve(
        _reads(
            Read("NHMD-000001", "code128", Box(100, 100, 400, 130), "zxing"),
            Read("NHMD-000002", "code128", Box(100, 900, 400, 930), "zxing"),
        ),
        load_rules(),
        "NHMD",
    )
    assert sorted(code.identifier for code in codes) == ["NHMD-000001", "NHMD-000002"]
    assert conflicts == []


def test_a_code_read_by_pyzbar_alone_without_a_check_is_not_trusted() -> None:
    box = Box(10, 10, 300, 40)
    code39, _ = barcode_module._resolve(_reads(Read("C0268502F", "code39", box, "pyzbar")), load_rules(), "F")
    assert code39 == []
    code128, _ = barcode_module._resolve(_reads(Read("NHMD-000001", "code128", box, "pyzbar")), load_rules(), "NHMD")
    assert [code.identifier for code in code128] == ["NHMD-000001"]


def test_ean13_check_digit_is_verified_and_br_codes_are_normalised() -> None:
    assert barcode_module._check_digit_ok(Read("0000005182879", "ean13", Box(0, 0, 1, 1), "zxing"))
    assert not barcode_module._check_digit_ok(Read("0000005182878", "ean13", Box(0, 0, 1, 1), "zxing"))
    codes, _ = barcode_module._resolve(
        _reads(Read("0000005182879", "ean13", Box(0, 0, 99, 30), "zxing")), load_rules(), "BR"
    )
    assert codes[0].identifier == "BR0000005182879"
    assert codes[0].role == "specimen"


def test_mfn_uri_is_kept_whole_with_its_short_id() -> None:
    rules = load_rules()
    classified = rules.classify("http://coll.mfn-berlin.de/u/1bbabf", "qrcode", "MfN")
    assert classified is not None
    assert classified.identifier == "http://coll.mfn-berlin.de/u/1bbabf"
    assert classified.short_id == "1bbabf"


def test_codabar_framing_is_stripped_and_mod43_is_verified(tmp_path: Path) -> None:
    rules_file = tmp_path / "rules.toml"
    rules_file.write_text(
        "[[institution]]\nname = 'X'\nrules = [\n"
        "  { role = 'specimen', pattern = '^\\d{6}$', symbologies = ['codabar'] },\n"
        "  { role = 'specimen', pattern = '^X[0-9A-Z]{5,}$', symbologies = ['code39'], mod43 = true },\n]\n"
    )
    rules = load_rules(rules_file)
    codabar = rules.classify("A123456B", "codabar", "X")
    assert codabar is not None
    assert codabar.identifier == "123456"
    good = rules.classify("X123455", "code39", "X")  # (33 + 1 + 2 + 3 + 4 + 5) % 43 = 5: the check character
    assert good is not None
    assert good.identifier == "X12345"
    assert rules.classify("X123456", "code39", "X") is None


def test_bad_rules_are_config_errors_and_an_unknown_institution_holds_its_group(tmp_path: Path) -> None:
    broken = tmp_path / "rules.toml"
    broken.write_text("[[institution]]\nname = 'X'\nrules = [{ role = 'specimen', pattern = '([' }]\n")
    with pytest.raises(ConfigError, match="pattern"):
        load_rules(broken)
    broken.write_text("[[institution]]\nname = 'X'\nrules = [{ role = 'boss', pattern = 'x' }]\n")
    with pytest.raises(ConfigError):
        load_rules(broken)
    with pytest.raises(GroupHeld, match="known: NHMD") as held:  # every asset of it would get this answer
        load_rules().find("Atlantis")
    assert (held.value.group_kind, held.value.group_value) == ("institution", "Atlantis")


def test_institution_aliases_are_accepted() -> None:
    assert load_rules().find("meise").name == "BR"


def test_settings_can_switch_the_second_opinion_off() -> None:
    image, _ = sheet(width=1500, height=2250)
    result = read_barcodes(loaded(image), institution="NHMD", settings=BarcodeSettings(second_opinion=False))
    assert result.codes[0].decoders == ("zxing",)
    with_opinion = read_barcodes(loaded(image), institution="NHMD")
    assert with_opinion.codes[0].decoders == ("pyzbar", "zxing")


@functools.cache
def _sheet_54mp() -> Image.Image:
    return sheet(width=6000, height=9000, barcode="NHMD-054054")[0]


@pytest.mark.slow
@pytest.mark.parametrize("angle", [0, 90, 180, 270, 5, -5])
def test_54_megapixel_sheet_in_every_orientation(angle: int) -> None:
    image = _sheet_54mp()
    turned = image.rotate(angle, expand=True, fillcolor=(52, 54, 58)) if angle else image
    result = read_barcodes(loaded(turned), institution="NHMD")
    assert result.barcodes == ["NHMD-054054"]
    assert result.passes == ["reduced"]


def test_two_codes_printed_close_together_are_two_codes_not_a_conflict() -> None:
    """zxing reads both stacked codes (their whole bar height); pyzbar only the upper one."""
    upper, lower = Box(100, 100, 400, 140), Box(100, 150, 400, 190)
    codes, conflicts = barcode_module._resolve(
        _reads(
            Read("NHMD-000001", "code128", upper, "zxing"),
            Read("NHMD-000002", "code128", lower, "zxing"),
            Read("NHMD-000001", "code128", Box(104, 101, 396, 139), "pyzbar"),
        ),
        load_rules(),
        "NHMD",
    )
    assert conflicts == []
    assert sorted(code.identifier for code in codes) == ["NHMD-000001", "NHMD-000002"]


def test_a_misread_by_one_decoder_call_is_a_conflict_even_if_others_agree() -> None:
    """The reduced pass: zxing and pyzbar's crop read V, pyzbar on the whole reduced copy misreads W (with a
    valid check digit): V must not be reported next to W as a second specimen."""
    box = Box(1000, 2000, 1600, 2200)
    reads = [
        (Read("0000005182879", "ean13", box, "zxing"), "reduced"),
        (Read("0000005182879", "ean13", Box(1004, 2003, 1597, 2196), "pyzbar"), "reduced"),
        (Read("0000005182855", "ean13", Box(998, 1996, 1602, 2204), "pyzbar"), "reduced"),
    ]
    assert all(barcode_module._check_digit_ok(read) for read, _ in reads)
    codes, conflicts = barcode_module._resolve(reads, load_rules(), "BR")
    assert codes == []
    assert conflicts[0].values == ("0000005182855", "0000005182879")


def test_two_tiles_reading_one_symbol_differently_is_a_conflict() -> None:
    codes, conflicts = barcode_module._resolve(
        [
            (Read("C0268502F", "code39", Box(500, 100, 900, 160), "zxing"), "tiles"),
            (Read("C0268505F", "code39", Box(502, 101, 899, 158), "zxing"), "tiles"),
        ],
        load_rules(),
        "F",
    )
    assert codes == []
    assert len(conflicts) == 1


def test_a_sheet_whose_only_code_is_disputed_needs_review_and_is_not_not_found() -> None:
    box = Box(100, 100, 400, 130)
    reads = _reads(Read("NHMD-000001", "code128", box, "zxing"), Read("NHMD-000007", "code128", box, "pyzbar"))
    codes, conflicts = barcode_module._resolve(reads, load_rules(), "NHMD")
    result = barcode_module._result(codes, conflicts, ["full"], "NHMD", loaded(Image.new("L", (9, 9))), 0.0, [])
    assert result.not_found is False
    assert result.needs_review is True
    assert result.barcodes == []


def test_without_an_institution_no_code_is_called_the_specimens() -> None:
    image, _ = sheet(width=1500, height=2250)
    result = read_barcodes(loaded(image))
    assert [code.role for code in result.codes] == ["other"]
    assert result.codes[0].institution == "NHMD"  # a hint: whose rules would match
    assert result.barcodes == []
    assert result.asset_subject == ""
    assert not result.not_found
    assert any("no institution given" in note for note in result.notes)
    ean = load_rules().classify("4006381333931", "ean13", None)
    assert ean is not None
    assert ean.role == "other"
    assert ean.identifier == "4006381333931"


def test_a_pass_that_misreads_what_another_pass_read_is_a_conflict() -> None:
    box = Box(100, 100, 400, 130)
    codes, conflicts = barcode_module._resolve(
        [
            (Read("NHMD-000001", "code128", box, "zxing"), "full"),
            (Read("NHMD-000007", "code128", box, "zxing"), "tiles"),
        ],
        load_rules(),
        "NHMD",
    )
    assert codes == []
    assert len(conflicts) == 1


def test_stacked_stickers_on_a_sheet_are_both_read() -> None:
    image, _ = sheet(width=1500, height=2250, barcode="NHMD-100001")
    image = add_code128(image, "NHMD-100003", at=(700, 600))
    image = add_code128(image, "NHMD-100004", at=(700, 720))
    result = read_barcodes(loaded(image), institution="NHMD")
    assert sorted(result.barcodes) == ["NHMD-100001", "NHMD-100003", "NHMD-100004"]
    assert result.conflicts == []


def test_a_misread_beside_the_scan_strips_of_a_tilted_code_is_a_conflict() -> None:
    """Tilted, the decoders report only the strip where a scan line crossed every bar, or a point; a scan line
    through part of the bars misread a Code 128 as a valid EAN-13 just above that strip."""
    reads = [
        (Read("NHMD-00000001", "code128", Box(760, 990, 1190, 1021), "zxing"), "tiles"),
        (Read("NHMD-00000001", "code128", Box(1184, 991, 1185, 992), "pyzbar"), "tiles"),
        (Read("7978971111021", "ean13", Box(753, 978, 1196, 981), "zxing"), "tiles"),
    ]
    codes, conflicts = barcode_module._resolve(reads, load_rules(), "BR")
    assert codes == []
    assert "7978971111021" in conflicts[0].values


def test_tilted_stacked_codes_never_yield_a_wrong_value() -> None:
    """Two flat Code 128 stickers 10 px apart, turned 6 degrees: reading them as BR (whose rules turn any
    EAN-13 into a specimen number) must not report the EAN-13 misread of a partial scan line."""
    canvas = Image.new("RGB", (3000, 2400), "white")
    canvas = add_code128(canvas, "NHMD-00000001", at=(600, 900), module_px=4, bar_height=60)
    canvas = add_code128(canvas, "NHMD-00000002", at=(600, 970), module_px=4, bar_height=60)
    tilted = canvas.rotate(6, fillcolor="white", resample=Image.Resampling.BICUBIC)
    for institution in ("BR", "NHMD", None):
        result = read_barcodes(loaded(tilted), institution=institution)
        assert {code.value for code in result.codes} <= {"NHMD-00000001", "NHMD-00000002"}, institution


def test_upright_stacked_flat_codes_are_two_codes() -> None:
    canvas = Image.new("RGB", (3000, 2400), "white")
    canvas = add_code128(canvas, "NHMD-00000001", at=(600, 900), module_px=3, bar_height=60)
    canvas = add_code128(canvas, "NHMD-00000002", at=(600, 970), module_px=3, bar_height=60)
    result = read_barcodes(loaded(canvas), institution="NHMD")
    assert sorted(result.barcodes) == ["NHMD-00000001", "NHMD-00000002"]
    assert result.conflicts == []


def test_itf_fragments_of_a_longer_itf_are_not_a_conflict() -> None:
    import io

    import barcode
    from barcode.writer import ImageWriter

    buffer = io.BytesIO()
    barcode.get("itf", "12345678901231", writer=ImageWriter()).write(buffer, {"module_width": 0.3, "write_text": False})
    canvas = Image.new("RGB", (1500, 1000), "white")
    canvas.paste(Image.open(io.BytesIO(buffer.getvalue())).convert("RGB"), (100, 300))
    result = read_barcodes(loaded(canvas), institution="NHMD")
    assert [code.value for code in result.codes] == ["12345678901231"]
    assert result.conflicts == []
    assert "skew" in result.passes  # the pass whose tilted scan lines read the fragments


def test_without_an_institution_a_failed_check_character_still_hides_the_value(tmp_path: Path) -> None:
    rules_file = tmp_path / "rules.toml"
    rules_file.write_text(
        "[[institution]]\nname = 'X'\nrules = [{ role = 'specimen', pattern = '^X[0-9]{6}$', mod43 = true }]\n"
    )
    assert load_rules(rules_file).classify("X123456", "code39", None) is None
