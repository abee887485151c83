"""The docs stay true to the code: links resolve, every setting is documented, the tour names
what exists, and the README stays short (issue 29). No database: the files are read and parsed."""

import ast
import importlib
import re
import unicodedata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
README = ROOT / "README.md"
CONFIGURATION = DOCS / "configuration.md"
TOUR = DOCS / "tour.md"
SETTINGS = ROOT / "config" / "settings"
README_MAX_LINES = 200

FENCE = re.compile(r"^(```|~~~)")
LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(([^()\s]+)(?:\s+\"[^\"]*\")?\)")
INLINE_CODE = re.compile(r"`[^`]*`")
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")


def pages() -> list[Path]:
    return [README, ROOT / "DEVELOPERS.md", *sorted(DOCS.glob("*.md"))]


def prose_lines(path: Path) -> list[tuple[int, str]]:
    """The file's lines outside fenced code blocks, numbered from 1."""
    lines, fenced = [], False
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if FENCE.match(line.strip()):
            fenced = not fenced
            continue
        if not fenced:
            lines.append((number, line))
    return lines


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, markup and punctuation dropped, spaces to ``-``."""
    text = re.sub(r"<[^>]+>", "", heading)  # inline HTML
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)  # a link keeps its text
    text = text.replace("`", "").strip().lower()
    kept = "".join(
        ch for ch in text if ch in " -_" or unicodedata.category(ch)[0] in "LN"
    )  # letters and digits of any script, spaces, hyphens, underscores
    return kept.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    found: set[str] = set()
    seen: dict[str, int] = {}
    for _, line in prose_lines(path):
        match = HEADING.match(line)
        if not match:
            continue
        base = slug(match.group(2))
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    return found


def relative_links(path: Path) -> list[tuple[int, str]]:
    links = []
    for number, line in prose_lines(path):
        for match in LINK.finditer(INLINE_CODE.sub("", line)):
            target = match.group(1)
            if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto:
                continue
            links.append((number, target))
    return links


def test_every_relative_link_resolves():
    broken = []
    for page in pages():
        for number, target in relative_links(page):
            file_part, _, fragment = target.partition("#")
            resolved = (page.parent / file_part).resolve() if file_part else page
            where = f"{page.relative_to(ROOT)}:{number}: ({target})"
            if not resolved.exists():
                broken.append(f"{where} {resolved.relative_to(ROOT)} does not exist")
            elif fragment and resolved.suffix == ".md" and fragment not in anchors(resolved):
                broken.append(f"{where} {resolved.relative_to(ROOT)} has no heading with anchor #{fragment}")
    assert not broken, "Broken links in the docs:\n" + "\n".join(broken)


def test_the_pages_link_checker_sees_links_and_anchors():
    # guards against a checker that finds nothing and so passes
    assert len(relative_links(README)) >= 8
    assert "orchestration-or-choreography" in anchors(DOCS / "design.md")
    assert slug("Reliability: `make chaos`") == "reliability-make-chaos"
    assert slug("1. The order arrives (both modes)") == "1-the-order-arrives-both-modes"


# --- settings ------------------------------------------------------------------------------------

ENV_CALLS = {"env"}  # ``env = environ.Env()``: env(...), env.bool(...), env.db(...), ...


def _string(node: ast.AST | None) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def _is_os_environ(node: ast.AST) -> bool:
    return (
        isinstance(node, ast.Attribute)
        and node.attr == "environ"
        and isinstance(node.value, ast.Name)
        and node.value.id == "os"
    )


def _reads_environment(func: ast.expr) -> bool:
    """Whether a call of ``func`` reads a variable named by its first argument."""
    if isinstance(func, ast.Name):
        return func.id in ENV_CALLS
    if not isinstance(func, ast.Attribute):
        return False
    owner = func.value
    env_cast = isinstance(owner, ast.Name) and owner.id in ENV_CALLS and not func.attr.startswith("read_env")
    environ_get = _is_os_environ(owner) and func.attr in {"get", "setdefault", "pop"}
    getenv = isinstance(owner, ast.Name) and owner.id == "os" and func.attr == "getenv"
    return env_cast or environ_get or getenv


def variables_read(source: str) -> set[str]:
    """Every environment variable the module reads: ``env("X")``, ``env.<cast>("X")``,
    ``os.environ.get("X")``, ``os.environ["X"]`` (read, not written), ``os.getenv("X")``."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call) and node.args and _reads_environment(node.func):
            name = _string(node.args[0])
        elif isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Load) and _is_os_environ(node.value):
            name = _string(node.slice)
        else:
            continue
        if name:
            names.add(name)
    return names


def settings_variables() -> dict[str, set[str]]:
    """Each variable the settings modules read, with the modules that read it."""
    found: dict[str, set[str]] = {}
    for module in sorted(SETTINGS.glob("*.py")):
        for name in variables_read(module.read_text(encoding="utf-8")):
            found.setdefault(name, set()).add(module.name)
    return found


def documented_variables() -> set[str]:
    """The variables named in the first cell of a table row of docs/configuration.md."""
    names: set[str] = set()
    for _, line in prose_lines(CONFIGURATION):
        if line.startswith("|"):
            first_cell = line.strip("|").split("|")[0]
            names.update(re.findall(r"`([A-Z][A-Z0-9_]*)`", first_cell))
    return names


def test_the_settings_parser_finds_every_kind_of_read():
    source = (
        "import os\nenv = None\n"
        'A = env("A", default=1)\nB = env.bool("B")\nC = env.db("C")\n'
        'D = os.environ.get("D", "")\nE = os.environ["E"]\nos.environ["F"] = "x"\nG = os.getenv("G")\n'
        'environ.Env.read_env("H")\n'
    )
    assert variables_read(source) == {"A", "B", "C", "D", "E", "G"}
    assert len(settings_variables()) >= 60  # the parser reads the real settings, not nothing


def test_every_setting_read_is_documented_in_configuration():
    documented = documented_variables()
    missing = {name: modules for name, modules in settings_variables().items() if name not in documented}
    assert not missing, "Settings read but not documented as a row of docs/configuration.md:\n" + "\n".join(
        f"{name} (read in config/settings/{', '.join(sorted(modules))})" for name, modules in sorted(missing.items())
    )


# --- the tour ------------------------------------------------------------------------------------

PACKAGES = {p.name for p in ROOT.iterdir() if (p / "__init__.py").is_file()} | {"config"}
DOTTED = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+$")
FILE_SUFFIXES = (".py", ".md", ".txt", ".in", ".toml", ".html", ".json", ".png", ".yml", ".yaml")


def tour_references() -> tuple[list[tuple[int, str]], list[tuple[int, str]]]:
    """The tour's paths and its dotted names of the project's code, in backticks, outside code blocks."""
    paths, names = [], []
    for number, line in prose_lines(TOUR):
        for token in re.findall(r"`([^`]+)`", line):
            if token.startswith(("/", "<", '"', "'")) or " " in token or "<" in token or "*" in token:
                continue  # a URL, a placeholder, a quoted event or task name, a command
            if "/" in token or token.endswith(FILE_SUFFIXES) or token == "Procfile":
                paths.append((number, token))
            elif DOTTED.match(token) and token.split(".")[0] in PACKAGES:
                names.append((number, token))
    return paths, names


def resolve(dotted: str) -> object:
    """Import the longest module prefix of ``dotted``, then look up the rest as attributes."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        module_name = ".".join(parts[:cut])
        try:
            obj: object = importlib.import_module(module_name)
        except ModuleNotFoundError as error:
            if error.name is not None and module_name.startswith(error.name):
                continue  # this prefix is not a module: try a shorter one
            raise
        for attribute in parts[cut:]:
            obj = getattr(obj, attribute)  # AttributeError names what is missing
        return obj
    raise ModuleNotFoundError(dotted)


def test_every_path_the_tour_names_exists():
    paths, _ = tour_references()
    assert len(paths) >= 20
    missing = [f"docs/tour.md:{n}: {path}" for n, path in paths if not (ROOT / path).exists()]
    assert not missing, "Files or folders the tour names that do not exist:\n" + "\n".join(missing)


def test_every_function_and_class_the_tour_names_exists():
    _, names = tour_references()
    assert len(names) >= 60
    missing = []
    for number, name in names:
        try:
            resolve(name)
        except (ImportError, AttributeError) as error:
            missing.append(f"docs/tour.md:{number}: {name} ({type(error).__name__}: {error})")
    assert not missing, "Names the tour gives that the code does not have:\n" + "\n".join(missing)


def test_the_tour_follows_each_step_in_both_modes():
    tour = TOUR.read_text(encoding="utf-8")
    for wiring in ("tasks", "handlers", "steps"):
        for participant in ("shop", "risk", "payments", "shipping"):
            assert f"`{participant}.{wiring}." in tour, f"docs/tour.md names no {participant}.{wiring} function"


# --- the README ----------------------------------------------------------------------------------


def test_the_readme_is_short():
    lines = len(README.read_text(encoding="utf-8").splitlines())
    assert lines <= README_MAX_LINES, (
        f"README.md has {lines} lines, more than {README_MAX_LINES}: move the detail into a page of docs/."
    )


def test_every_page_of_docs_starts_with_its_title_and_a_summary():
    for page in sorted(DOCS.glob("*.md")):
        if page.name in {"api.md", "benchmarks.md", "reliability.md"}:
            continue  # the API docs page's introduction, and two generated reports
        lines = page.read_text(encoding="utf-8").splitlines()
        assert lines[0].startswith("# "), f"docs/{page.name} does not start with a title"
        summary = [line for line in lines[1:4] if line.strip()]
        assert len(summary) >= 2 and not any(line.startswith("#") for line in summary), (
            f"docs/{page.name} does not start with a two-line summary under its title"
        )


def test_the_readme_links_every_page_of_docs():
    linked = {(README.parent / target.partition("#")[0]).resolve() for _, target in relative_links(README)}
    unlinked = [page.name for page in sorted(DOCS.glob("*.md")) if page.resolve() not in linked]
    assert not unlinked, f"README.md's 'where to go next' does not link: {', '.join(unlinked)}"
