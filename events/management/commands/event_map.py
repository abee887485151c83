"""``manage.py event_map``: who reacts to what, as a Mermaid flowchart (``--docs`` writes it into docs/design.md)."""

from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from events import registry
from events.map import ALL, MODES, event_map, readme_with_map


class Command(BaseCommand):
    help = "Print who reacts to whose events, as a Mermaid flowchart, from the subscriptions."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--mode",
            choices=(*MODES, ALL),
            default=registry.CHOREOGRAPHY,
            help="the sagas' coordination mode (orchestration shows what is choreographed even then)",
        )
        parser.add_argument(
            "--docs",
            "--readme",  # its name while the map was in the README
            dest="docs",
            action="store_true",
            help="write the (choreography) map into docs/design.md instead of printing it",
        )

    def handle(self, *args: Any, mode: str, docs: bool, **options: Any) -> None:
        chart = event_map(registry.subscriptions(), registry.publications(), mode=mode)
        if not docs:
            self.stdout.write(chart, ending="")
            return
        if mode != registry.CHOREOGRAPHY:
            raise CommandError("docs/design.md shows the choreography map.")
        path = Path(settings.BASE_DIR) / "docs" / "design.md"
        try:
            path.write_text(readme_with_map(path.read_text(), chart))
        except ValueError as error:
            raise CommandError(str(error)) from error
        self.stdout.write(f"Wrote the event map into {path}.")
