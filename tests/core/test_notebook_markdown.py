"""Markdown tables and findings the notebooks display: one column per header whatever the text holds."""

import re

import pytest

from thesislib import notebook as tnb
from thesislib.notebook import findings_markdown, markdown_table


def test_pipes_in_headers_and_cells_are_escaped_once():
    text = markdown_table([["a|b", 0.123, None, "x\\|y"]], ["method", "max |dQ|", "n", "c"])
    assert text.splitlines() == [
        "| method | max \\|dQ\\| | n | c |",
        "|---|---|---|---|",
        "| a\\|b | 0.12 | – | x\\|y |",
    ]


def test_line_breaks_inside_a_cell_do_not_end_the_row():
    text = markdown_table([["two\nlines", 1]], ["finding", "seeds"])
    assert text.splitlines()[2] == "| two lines | 1 |"


def _rendered_cells(text: str) -> tuple[int, list[int]]:
    """(header cells, cells per body row) of ``text`` as the book's MyST parser renders it."""
    pytest.importorskip("myst_parser")
    from markdown_it.renderer import RendererHTML
    from myst_parser.config.main import MdParserConfig
    from myst_parser.parsers.mdit import create_md_parser

    md = create_md_parser(MdParserConfig(enable_extensions={"dollarmath", "amsmath"}), RendererHTML)
    html = md.render(text)
    assert "<table>" in html, html
    head, body = html.split("</thead>")
    return len(re.findall(r"<th[\s>]", head)), [len(re.findall(r"<td[\s>]", row)) for row in body.split("<tr>")[1:]]


def test_the_sec_benchmark_headers_render_as_a_table():
    """SEC section 7: 'max |Q - Q_ref|' and 'max |dQ|' in the header row, math with |x| in a cell."""
    headers = ["method", "argmax agreement", "max |Q - Q_ref|", "seconds"]
    text = markdown_table([["lattice", 0.999, 1e-6, 0.4], ["$|x|$ norm", 1.0, 0.0, 1.2]], headers, floatfmt=".2g")
    assert _rendered_cells(text) == (4, [4, 4])
    assert _rendered_cells(markdown_table([[1, 2]], ["kind", "max |dQ|"])) == (2, [2])


def test_findings_as_a_table_with_caption():
    text = findings_markdown([["sec − seed", "+1.2 ± 0.4", "yes"]], ["compared", "difference", "holds?"],
                             caption="Thesis claims")
    assert text.splitlines() == ["**Thesis claims**", "", "| compared | difference | holds? |", "|---|---|---|",
                                 "| sec − seed | +1.2 ± 0.4 | yes |"]
    assert _rendered_cells(text.split("\n\n", 1)[1]) == (3, [3])


def test_findings_as_sentences_become_a_list():
    text = findings_markdown(["L-softmax vs softmax: no difference", "Table V:\n2 variants"])
    assert text.splitlines() == ["- L-softmax vs softmax: no difference", "- Table V: 2 variants"]
    assert findings_markdown([], caption="Verdicts") == "**Verdicts**\n\n*no findings*"


@pytest.mark.parametrize("rows, headers, match", [
    ([["a", "b", "c"]], ["x", "y"], "row 0 has 3 cells, headers has 2"),
    ([["a", "b"]], None, "need headers"),
    (["a sentence"], ["x"], "take no headers"),
    (["a sentence", ["a", "b"]], ["x", "y"], "mix sentences"),
])
def test_findings_reject_malformed_rows(rows, headers, match):
    with pytest.raises(ValueError, match=match):
        findings_markdown(rows, headers)


def test_show_findings_displays_rendered_markdown(monkeypatch):
    pytest.importorskip("IPython")
    import IPython.display

    shown = []
    monkeypatch.setattr(IPython.display, "display", shown.append)
    tnb.show_findings([["a", "yes"]], ["claim", "holds?"], caption="c")
    tnb.show_markdown("**bold** and $x$")
    assert [type(s).__name__ for s in shown] == ["Markdown", "Markdown"]
    assert shown[0].data == findings_markdown([["a", "yes"]], ["claim", "holds?"], caption="c")
    assert shown[1].data == "**bold** and $x$"
    with pytest.raises(TypeError, match="expects a str"):
        tnb.show_markdown(["not", "text"])
