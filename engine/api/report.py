"""The campaign report (``tunedeck report --json``): its sections as data, and the Markdown they render to.

A section is a list of blocks in reading order: paragraphs of text and tables. Every table cell
is already formatted as the Markdown shows it ("12/13 (92.3%)", "$15.00", "—" for a figure not
declared), so a script and a person read the same numbers.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from engine.api.base import ApiModel


class ReportText(ApiModel):
    """A paragraph of a section: a sentence, a legend line, or a note about a part that could not be read."""

    kind: Literal["text"]
    text: str


class ReportTable(ApiModel):
    """A table of a section: every row has exactly as many cells as ``headers``."""

    kind: Literal["table"]
    title: str | None = Field(description="a bold line above the table, or None")
    headers: list[str]
    rows: list[list[str]]


ReportBlock = Annotated[ReportText | ReportTable, Field(discriminator="kind")]


class ReportSection(ApiModel):
    """One ``##`` section of the report."""

    id: str = Field(description="progression, categories, config, deltas, rows, anchors, gate, alerts, ...")
    title: str
    blocks: list[ReportBlock]


class CampaignReport(ApiModel):
    """``tunedeck report --json``: the sections, the Markdown, and the parts that could not be read."""

    campaign: str = Field(description="campaign.toml's name")
    generated_at: str = Field(description="UTC ISO time")
    production: str | None = Field(description="the run in production.json, None when there is none")
    sections: list[ReportSection]
    markdown: str
    out: str | None = Field(description="the file written (--out), None when the Markdown went to stdout")
    warnings: list[str] = Field(description="one line per part left out (also a note in its section)")
