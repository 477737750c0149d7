"""OCR: labels found wherever they are, read in our languages, and handwriting-like noise flagged, not trusted."""

from __future__ import annotations

import random

import pytest
from PIL import Image, ImageDraw, ImageFont

from imaging_support import loaded, sheet
from integration.errors import ConfigError
from integration.hpc_client.modules import ocr as ocr_module
from integration.hpc_client.modules.ocr import OcrSettings, read_text

_FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSerif.ttf"


def _words(text: str) -> set[str]:
    return {word.strip(".,;:()").casefold() for word in text.split()}


def test_the_label_of_a_generated_sheet_is_found_and_read() -> None:
    image, _ = sheet(width=2000, height=3000)
    result = read_text(loaded(image), institution="NHMD")
    words = _words(result.tags_ocr)
    assert {"herbarium", "nhmd", "flora", "denmark", "carex", "nigra", "leg"} <= words
    label = max(result.regions, key=lambda region: region.words)
    assert label.box[0] > 2000 * 0.3
    assert label.box[1] > 3000 * 0.6
    assert not label.low_confidence


def test_a_skewed_label_is_straightened() -> None:
    page = Image.new("L", (1600, 900), 250)
    draw = ImageDraw.Draw(page)
    font = ImageFont.truetype(_FONT, 44)
    lines = ["Herbarium Hauniense", "Saxifraga oppositifolia", "Greenland: Disko Island", "leg. M. Porsild 1921"]
    for row, line in enumerate(lines):
        draw.text((160, 200 + row * 80), line, font=font, fill=20)
    rotated = page.rotate(4, resample=Image.Resampling.BICUBIC, fillcolor=250)
    result = read_text(loaded(rotated.convert("RGB")))
    assert {"saxifraga", "oppositifolia", "greenland", "disko", "porsild", "1921"} <= _words(result.tags_ocr)
    assert any(abs(region.skew_degrees) >= 2 for region in result.regions)


def test_danish_letters_need_the_danish_model_first() -> None:
    page = Image.new("L", (1400, 400), 250)
    ImageDraw.Draw(page).text((100, 150), "Sjælland: Gribskov, løse blade", font=ImageFont.truetype(_FONT, 48), fill=20)
    result = read_text(loaded(page.convert("RGB")), institution="NHMD")
    assert result.languages[0] == "dan"
    assert {"sjælland", "løse"} <= _words(result.tags_ocr)


def test_a_blank_page_has_no_regions_and_no_text() -> None:
    result = read_text(loaded(Image.new("RGB", (1200, 1600), (238, 232, 212))))
    assert result.regions == []
    assert result.tags_ocr == ""


def test_scribbles_are_low_confidence_and_kept_out_of_tags_ocr() -> None:
    page = Image.new("L", (1200, 600), 250)
    draw = ImageDraw.Draw(page)
    rng = random.Random(4)  # scribbled "lines" of ink: what tesseract makes of handwriting
    for row in range(4):
        x = 100
        while x < 1050:
            points = [(x + k * 6, 150 + row * 90 + rng.randint(-18, 18)) for k in range(rng.randint(4, 9))]
            draw.line(points, fill=30, width=4)
            x = points[-1][0] + rng.randint(20, 40)
    result = read_text(loaded(page.convert("RGB")))
    assert result.regions, "the scribbles look like text to the layout pass: they must be read and flagged"
    assert all(region.low_confidence for region in result.regions)
    assert result.tags_ocr == ""


def test_missing_languages_are_noted_and_none_installed_is_a_config_error() -> None:
    result = read_text(loaded(Image.new("RGB", (400, 300), "white")), settings=OcrSettings(languages=("eng", "xxx")))
    assert result.languages == ["eng"]
    assert any("xxx" in note for note in result.notes)
    with pytest.raises(ConfigError, match="none of the OCR languages"):
        read_text(loaded(Image.new("RGB", (400, 300), "white")), settings=OcrSettings(languages=("xxx",)))


def test_no_tesseract_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import pytesseract

    ocr_module._installed_languages.cache_clear()
    monkeypatch.setattr(pytesseract.pytesseract, "tesseract_cmd", "/nonexistent/tesseract")
    try:
        with pytest.raises(ConfigError, match="tesseract is not installed"):
            read_text(loaded(Image.new("RGB", (400, 300), "white")))
    finally:
        ocr_module._installed_languages.cache_clear()


def test_a_label_turned_sideways_is_found_by_turning_the_image() -> None:
    page = Image.new("L", (1400, 500), 250)
    draw = ImageDraw.Draw(page)
    font = ImageFont.truetype(_FONT, 44)
    for row, line in enumerate(["Herbarium Hauniense", "Carex nigra (L.) Reichard", "leg. J. Lange 1866"]):
        draw.text((100, 80 + row * 110), line, font=font, fill=20)
    sideways = page.rotate(90, expand=True)  # stored 90 degrees counter-clockwise from upright
    result = read_text(loaded(sideways.convert("RGB")))
    assert {"hauniense", "carex", "nigra", "lange", "1866"} <= _words(result.tags_ocr)
    assert result.rotation == 270  # turned back clockwise
    assert any("turning the image" in note for note in result.notes)


def test_a_tesseract_timeout_is_the_nodes_problem(monkeypatch: pytest.MonkeyPatch) -> None:
    import pytesseract

    from integration.errors import NodeResourceError

    def too_slow(*args: object, **kwargs: object) -> object:
        raise RuntimeError("Tesseract process timeout")

    monkeypatch.setattr(pytesseract, "image_to_data", too_slow)
    with pytest.raises(NodeResourceError, match="within"):
        read_text(loaded(Image.new("RGB", (400, 300), "white")))


def test_tesseract_killed_by_a_signal_is_the_nodes_problem(monkeypatch: pytest.MonkeyPatch) -> None:
    import pytesseract

    from integration.errors import NodeResourceError

    def killed(*args: object, **kwargs: object) -> object:
        raise pytesseract.TesseractError(-9, "")

    monkeypatch.setattr(pytesseract, "image_to_data", killed)
    with pytest.raises(NodeResourceError, match="killed"):
        read_text(loaded(Image.new("RGB", (400, 300), "white")))
