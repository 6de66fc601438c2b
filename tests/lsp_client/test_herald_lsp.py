"""`herald lsp` driven by a third-party client (pytest-lsp over pygls).

Each test opens a document as an editor does, waits for the diagnostics the
server publishes, and sends the requests an editor sends: code actions (the
returned WorkspaceEdit is applied here and sent back), completion, hover,
formatting and go to definition.
"""

from __future__ import annotations

import asyncio
import pathlib
import subprocess

from lsprotocol import types
from pytest_lsp import LanguageClient

from conftest import HERALD

# The server answers within this; a missing notification fails the test
# instead of hanging it.
TIMEOUT = 30

POLICY = """\
const office_ip = "10.0.0.1"

rule outside_login {
  match login { user.username: name }
  guard event.client_ipp != office_ip
  action log("login by {name}")
}
"""


def offset(text: str, pos: types.Position) -> int:
    """The index in `text` of an LSP position (UTF-16 columns)."""
    lines = text.split("\n")
    start = sum(len(l) + 1 for l in lines[: pos.line])
    units = 0
    for i, ch in enumerate(lines[pos.line] if pos.line < len(lines) else ""):
        if units >= pos.character:
            return start + i
        units += 2 if ord(ch) > 0xFFFF else 1
    return start + len(lines[pos.line]) if pos.line < len(lines) else len(text)


def position(text: str, index: int) -> types.Position:
    """The LSP position of index `index` in `text`."""
    before = text[:index]
    line = before.count("\n")
    col = before[before.rfind("\n") + 1 :]
    return types.Position(line=line, character=sum(2 if ord(c) > 0xFFFF else 1 for c in col))


def apply_edits(text: str, edits) -> str:
    """Apply non-overlapping text edits, last first."""
    spans = sorted(
        ((offset(text, e.range.start), offset(text, e.range.end), e.new_text) for e in edits),
        reverse=True,
    )
    for start, end, new in spans:
        text = text[:start] + new + text[end:]
    return text


def apply_workspace_edit(edit: types.WorkspaceEdit, uri: str, text: str) -> str:
    """The document `uri` after `edit`, whichever of its two forms the server used."""
    edits = []
    if edit.changes:
        assert set(edit.changes) == {uri}, edit.changes
        edits.extend(edit.changes[uri])
    for change in edit.document_changes or []:
        assert isinstance(change, types.TextDocumentEdit), change
        assert change.text_document.uri == uri
        edits.extend(change.edits)
    assert edits, f"an empty edit: {edit}"
    return apply_edits(text, edits)


class Doc:
    """One open document and its version."""

    def __init__(self, client: LanguageClient, path: pathlib.Path, text: str):
        self.client, self.uri, self.text, self.version = client, path.as_uri(), text, 1
        path.write_text(text)

    async def open(self):
        self.client.text_document_did_open(
            types.DidOpenTextDocumentParams(
                text_document=types.TextDocumentItem(
                    uri=self.uri, language_id="herald", version=self.version, text=self.text
                )
            )
        )
        return await self.diagnostics()

    async def change(self, text: str):
        self.text, self.version = text, self.version + 1
        self.client.text_document_did_change(
            types.DidChangeTextDocumentParams(
                text_document=types.VersionedTextDocumentIdentifier(uri=self.uri, version=self.version),
                content_changes=[types.TextDocumentContentChangeWholeDocument(text=text)],
            )
        )
        return await self.diagnostics()

    async def diagnostics(self) -> list[types.Diagnostic]:
        """The next diagnostics published for this document."""
        while True:
            params = await asyncio.wait_for(
                self.client.wait_for_notification(types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS), TIMEOUT
            )
            if params.uri == self.uri:
                return list(params.diagnostics)

    def at(self, needle: str, delta: int = 0) -> types.Position:
        """The position of the first `needle` in the text, plus `delta` characters."""
        i = self.text.index(needle)
        return position(self.text, i + delta)

    def ident(self) -> types.TextDocumentIdentifier:
        return types.TextDocumentIdentifier(uri=self.uri)


async def test_diagnostic_and_quick_fix(client: LanguageClient, authentik_root: pathlib.Path):
    doc = Doc(client, authentik_root / "login.herald", POLICY)
    diags = await doc.open()
    assert len(diags) == 1, diags
    d = diags[0]
    assert d.code == "E0109"
    assert d.severity == types.DiagnosticSeverity.Error
    assert d.source == "herald"
    # The range covers exactly the misspelt field.
    start = doc.at("client_ipp")
    assert d.range == types.Range(start=start, end=types.Position(line=start.line, character=start.character + 10))
    assert "no field `client_ipp`" in d.message
    assert "did you mean `client_ip`" in d.message

    actions = await client.text_document_code_action_async(
        types.CodeActionParams(
            text_document=doc.ident(),
            range=d.range,
            context=types.CodeActionContext(diagnostics=[d]),
        )
    )
    assert actions, "no code action for the diagnostic"
    fixes = [a for a in actions if isinstance(a, types.CodeAction) and a.kind == types.CodeActionKind.QuickFix]
    assert len(fixes) == 1, actions
    fix = fixes[0]
    assert fix.title == "Replace with `client_ip`"
    assert fix.is_preferred
    assert [x.code for x in fix.diagnostics or []] == ["E0109"]

    fixed = apply_workspace_edit(fix.edit, doc.uri, doc.text)
    assert fixed == POLICY.replace("client_ipp", "client_ip")
    assert await doc.change(fixed) == []

    # Closing the document clears its diagnostics in the editor.
    client.text_document_did_close(types.DidCloseTextDocumentParams(text_document=doc.ident()))
    assert await doc.diagnostics() == []


async def test_no_code_action_away_from_a_diagnostic(client: LanguageClient, authentik_root: pathlib.Path):
    doc = Doc(client, authentik_root / "login.herald", POLICY)
    await doc.open()
    # The `const` line has no diagnostic, so nothing to fix there.
    here = types.Range(start=types.Position(line=0, character=0), end=types.Position(line=0, character=5))
    actions = await client.text_document_code_action_async(
        types.CodeActionParams(text_document=doc.ident(), range=here, context=types.CodeActionContext(diagnostics=[]))
    )
    assert not actions, actions


async def test_completion_after_event_dot(client: LanguageClient, authentik_root: pathlib.Path):
    typing = POLICY.replace("guard event.client_ipp != office_ip", "guard event.")
    doc = Doc(client, authentik_root / "login.herald", typing)
    await doc.open()  # a syntax error while typing; completion works on the text
    items = await client.text_document_completion_async(
        types.CompletionParams(text_document=doc.ident(), position=doc.at("event.", len("event.")))
    )
    items = items.items if isinstance(items, types.CompletionList) else items
    labels = {i.label: i for i in items}
    # Fields every authentik event has, and those of `login` only.
    for want in ["client_ip", "created", "event_uuid", "user", "context"]:
        assert want in labels, f"no `{want}` in {sorted(labels)}"
    assert labels["client_ip"].kind == types.CompletionItemKind.Field
    assert labels["client_ip"].detail == "string?"
    # Not functions or actions after `event.`.
    assert "send_email" not in labels and "starts_with" not in labels

    # A nested path: `event.context.` offers the login context's keys.
    nested = POLICY.replace("guard event.client_ipp != office_ip", "guard event.context.")
    await doc.change(nested)
    items = await client.text_document_completion_async(
        types.CompletionParams(text_document=doc.ident(), position=doc.at("event.context.", len("event.context.")))
    )
    items = items.items if isinstance(items, types.CompletionList) else items
    labels = {i.label for i in items}
    assert {"auth_method", "auth_method_args", "http_request"} <= labels, sorted(labels)


async def test_hover_shows_types(client: LanguageClient, authentik_root: pathlib.Path):
    doc = Doc(client, authentik_root / "login.herald", POLICY.replace("client_ipp", "client_ip"))
    assert await doc.open() == []

    # A pattern binding used in the action.
    hover = await client.text_document_hover_async(
        types.HoverParams(text_document=doc.ident(), position=doc.at("{name}", 1))
    )
    assert isinstance(hover.contents, types.MarkupContent), hover
    assert "name: string" in hover.contents.value
    # The range the hover is about: `name` inside the interpolation.
    assert hover.range.start == doc.at("{name}", 1)

    # An event path: its whole type, optional included.
    hover = await client.text_document_hover_async(
        types.HoverParams(text_document=doc.ident(), position=doc.at("client_ip", 3))
    )
    assert "event.client_ip: string?" in hover.contents.value, hover.contents

    # A built-in action: its signature and documentation.
    hover = await client.text_document_hover_async(
        types.HoverParams(text_document=doc.ident(), position=doc.at("log(", 1))
    )
    assert "log(" in hover.contents.value, hover.contents

    # White space: nothing to say.
    hover = await client.text_document_hover_async(
        types.HoverParams(text_document=doc.ident(), position=types.Position(line=1, character=0))
    )
    assert hover is None


async def test_formatting_matches_herald_fmt(client: LanguageClient, authentik_root: pathlib.Path, tmp_path):
    messy = (
        "const   office_ip=\"10.0.0.1\"\n"
        "rule   outside_login{match login{user.username:name}\n"
        "guard   event.client_ip!=office_ip # not from the office\n"
        "action log( \"login by {name}\" )}\n"
    )
    doc = Doc(client, authentik_root / "messy.herald", messy)
    await doc.open()
    edits = await client.text_document_formatting_async(
        types.DocumentFormattingParams(
            text_document=doc.ident(), options=types.FormattingOptions(tab_size=2, insert_spaces=True)
        )
    )
    assert edits, "no edits for a file that is not in the canonical layout"
    formatted = apply_edits(messy, edits)

    # `herald fmt` on the same text, as a file.
    on_disk = tmp_path / "fmt.herald"
    on_disk.write_text(messy)
    subprocess.run([HERALD, "fmt", str(on_disk)], check=True, capture_output=True)
    assert formatted == on_disk.read_text()
    assert "  guard event.client_ip != office_ip  # not from the office\n" in formatted

    # Formatting the formatted text changes nothing.
    assert await doc.change(formatted) == []
    edits = await client.text_document_formatting_async(
        types.DocumentFormattingParams(
            text_document=doc.ident(), options=types.FormattingOptions(tab_size=2, insert_spaces=True)
        )
    )
    assert not edits, edits


async def test_formatting_leaves_a_broken_file_alone(client: LanguageClient, authentik_root: pathlib.Path):
    doc = Doc(client, authentik_root / "broken.herald", "rule x {\n  match login {\n")
    diags = await doc.open()
    assert diags and all(d.severity == types.DiagnosticSeverity.Error for d in diags)
    edits = await client.text_document_formatting_async(
        types.DocumentFormattingParams(
            text_document=doc.ident(), options=types.FormattingOptions(tab_size=2, insert_spaces=True)
        )
    )
    assert not edits


async def test_definition_of_a_const(client: LanguageClient, authentik_root: pathlib.Path):
    text = POLICY.replace("client_ipp", "client_ip")
    doc = Doc(client, authentik_root / "login.herald", text)
    assert await doc.open() == []
    use = text.index("office_ip", text.index("guard"))
    result = await client.text_document_definition_async(
        types.DefinitionParams(text_document=doc.ident(), position=position(text, use + 2))
    )
    loc = result[0] if isinstance(result, list) else result
    assert isinstance(loc, types.Location), result
    assert loc.uri == doc.uri
    # The name in `const office_ip = ...`.
    assert loc.range.start == types.Position(line=0, character=6)
    assert loc.range.end == types.Position(line=0, character=15)

    # And a pattern binding: `name` in the action leads to the pattern.
    result = await client.text_document_definition_async(
        types.DefinitionParams(text_document=doc.ident(), position=doc.at("{name}", 2))
    )
    loc = result[0] if isinstance(result, list) else result
    assert loc.range.start == doc.at("name }")


GITHUB_POLICY = """\
# pushes — 🚀 tracked
rule forced_push {
  match push { ref: r, forced: true }
  guard let who = Member[event.sender.login]
  action log("🚀 forced push to {r} by {who.name} ({event.sender.logn})")
}
"""


async def test_custom_schema_from_herald_toml(github_client: LanguageClient, github_root: pathlib.Path):
    client = github_client
    doc = Doc(client, github_root / "push.herald", GITHUB_POLICY)
    diags = await doc.open()
    # Against the built-in schema, `push` would be an unknown event type;
    # against the workspace's it is one misspelt field of `Account`.
    assert [d.code for d in diags] == ["E0109"], diags
    d = diags[0]
    # Columns count UTF-16 units: the rocket before the mistake is two.
    start = doc.at("logn")
    assert start.character == len('  action log("🚀 forced push to {r} by {who.name} ({event.sender.') + 1
    assert d.range.start == start and d.range.end == types.Position(line=start.line, character=start.character + 4)
    assert "did you mean `login`" in d.message

    actions = await client.text_document_code_action_async(
        types.CodeActionParams(text_document=doc.ident(), range=d.range, context=types.CodeActionContext(diagnostics=[d]))
    )
    fixed = apply_workspace_edit(actions[0].edit, doc.uri, doc.text)
    assert fixed == GITHUB_POLICY.replace("logn", "login")
    assert await doc.change(fixed) == []

    # Completion after `event.`: the push event's fields from the custom schema.
    typing = fixed.replace('action log("🚀 forced push to {r} by {who.name} ({event.sender.login})")', "action log(event.)")
    assert typing != fixed
    await doc.change(typing)
    items = await client.text_document_completion_async(
        types.CompletionParams(text_document=doc.ident(), position=doc.at("log(event.", len("log(event.")))
    )
    items = items.items if isinstance(items, types.CompletionList) else items
    labels = {i.label for i in items}
    assert {"ref", "forced", "commits", "repository", "sender", "delivery"} <= labels, sorted(labels)
    assert "pull_request" not in labels and "client_ip" not in labels, sorted(labels)

    # Hover over the `guard let` name, after the rocket: an entity of the
    # custom schema.
    await doc.change(fixed)
    hover = await client.text_document_hover_async(
        types.HoverParams(text_document=doc.ident(), position=doc.at("who.name", 1))
    )
    assert "who: Member" in hover.contents.value, hover.contents
    assert hover.range.start == doc.at("who.name")

    # Go to definition of the entity leads into the schema file.
    result = await client.text_document_definition_async(
        types.DefinitionParams(text_document=doc.ident(), position=doc.at("Member[", 2))
    )
    loc = result[0] if isinstance(result, list) else result
    schema_path = github_root / "schemas" / "github.herald"
    assert loc.uri == schema_path.as_uri(), loc.uri
    schema_text = schema_path.read_text()
    # The entity's declaration (the whole item: editors jump to its start).
    assert loc.range.start == position(schema_text, schema_text.index("entity Member key"))


async def test_schema_from_initialization_options(options_client: LanguageClient, tmp_path: pathlib.Path):
    doc = Doc(options_client, tmp_path / "star.herald", 'rule starred {\n  match star\n  action log("star from {event.sender.login}")\n}\n')
    assert await doc.open() == []
    # Without that schema the same text does not check.
    doc2 = Doc(options_client, tmp_path / "pull.herald", "rule pr {\n  match pull_request { numbr: n }\n}\n")
    diags = await doc2.open()
    assert [d.code for d in diags] == ["E0109"], diags
    assert "did you mean `number`" in diags[0].message
