"""Helpers shared by the CLI commands."""

from __future__ import annotations

import typer

from adaptlab.config import AdaptlabConfig, load_config
from adaptlab.project import Project


def load_project(ctx: typer.Context) -> Project:
    options = ctx.obj or {}
    config: AdaptlabConfig = load_config(options.get("config"), home=options.get("home"))
    return Project(config)
