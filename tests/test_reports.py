"""The shared report writers: HTML builders escape what they are given; plots are PNG bytes, also when empty."""

from __future__ import annotations

import pytest

from trackid.reports import bullet_list, heading, histograms_png, image, page, preformatted, table


def test_html_builders_escape_every_text_they_are_given() -> None:
    html = page(
        "a <b> & c",
        heading("verdict: <PASS>"),
        table(["metric", "<value>"], [("rate", "0.5"), ("<script>", "&")]),
        preformatted('{"x": 1}'),
        bullet_list(["one < two"]),
        image("plot's.png"),
    )
    assert html.startswith("<!doctype html><meta charset='utf-8'><title>a &lt;b&gt; &amp; c</title><h1>")
    assert "<h1>verdict: &lt;PASS&gt;</h1>" in html
    assert "<tr><th>metric</th><th>&lt;value&gt;</th></tr><tr><td>rate</td><td>0.5</td></tr>" in html
    assert "<td>&lt;script&gt;</td><td>&amp;</td>" in html and "<script>" not in html
    assert "<pre>{&quot;x&quot;: 1}</pre>" in html and "<li>one &lt; two</li>" in html
    assert "<img src='plot&#x27;s.png'>" in html and html.endswith("\n")
    assert bullet_list([], empty="nothing suspicious") == "<ul><li>nothing suspicious</li></ul>"
    assert bullet_list([]) == "<ul></ul>"
    with pytest.raises(ValueError, match="level must be 1 to 6"):
        heading("x", 7)


def test_histograms_are_png_bytes_for_groups_one_value_or_none() -> None:
    png = b"\x89PNG\r\n\x1a\n"
    assert histograms_png({"same": [0.8, 0.9, 0.7], "different": [0.1, 0.3]}, "similarity").startswith(png)
    assert histograms_png({"one": [0.5]}, "similarity").startswith(png)  # the bins get a width
    assert histograms_png({"empty": []}, "similarity").startswith(png)
