"""``manage.py event_map``: who reacts to what, as a Mermaid flowchart (``--readme`` writes it in)."""

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
            "--readme", action="store_true", help="write the (choreography) map into README.md instead of printing it"
        )

    def handle(self, *args: Any, mode: str, readme: bool, **options: Any) -> None:
        chart = event_map(registry.subscriptions(), registry.publications(), mode=mode)
        if not readme:
            self.stdout.write(chart, ending="")
            return
        if mode != registry.CHOREOGRAPHY:
            raise CommandError("The README shows the choreography map.")
        path = Path(settings.BASE_DIR) / "README.md"
        try:
            path.write_text(readme_with_map(path.read_text(), chart))
        except ValueError as error:
            raise CommandError(str(error)) from error
        self.stdout.write(f"Wrote the event map into {path}.")
