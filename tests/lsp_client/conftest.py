"""Fixtures: `herald lsp` started as a subprocess and driven over stdio by
pytest-lsp's client (pygls), as an editor would drive it.

The binary is `$HERALD_BIN`, by default the release build of this checkout
(`cargo build --release`). Each session is initialised with the client
capabilities that pytest-lsp records for a real editor (Neovim, VS Code,
Emacs), so every test runs once per editor.
"""

from __future__ import annotations

import os
import pathlib

import pytest
import pytest_lsp
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities

REPO = pathlib.Path(__file__).resolve().parents[2]
HERALD = os.environ.get("HERALD_BIN", str(REPO / "target" / "release" / "herald"))
EDITORS = ["neovim", "visual-studio-code", "emacs"]

CONFIG = ClientServerConfig(server_command=[HERALD, "lsp"])


def pytest_configure(config):
    if not os.access(HERALD, os.X_OK):
        raise pytest.UsageError(
            f"no herald binary at {HERALD}: run `cargo build --release` or set HERALD_BIN"
        )


async def start(client: LanguageClient, editor: str, root: pathlib.Path, options=None):
    """`initialize` + `initialized` with `root` as the workspace folder."""
    result = await client.initialize_session(
        types.InitializeParams(
            capabilities=client_capabilities(editor),
            root_uri=root.as_uri(),
            workspace_folders=[types.WorkspaceFolder(uri=root.as_uri(), name=root.name)],
            initialization_options=options,
        )
    )
    # Full text sync: every didChange carries the whole document.
    assert result.capabilities.text_document_sync == types.TextDocumentSyncKind.Full
    return result


@pytest.fixture
def authentik_root(tmp_path: pathlib.Path) -> pathlib.Path:
    """A workspace without `herald.toml`: the built-in authentik schema."""
    root = tmp_path / "authentik-policies"
    root.mkdir()
    return root


@pytest.fixture
def github_root(tmp_path: pathlib.Path) -> pathlib.Path:
    """A workspace whose `herald.toml` names a custom schema (the GitHub
    example's), relative to the workspace root."""
    root = tmp_path / "github policies"  # a space: URIs are percent-encoded
    (root / "schemas").mkdir(parents=True)
    schema = (REPO / "examples" / "github" / "schema.herald").read_text()
    (root / "schemas" / "github.herald").write_text(schema)
    (root / "herald.toml").write_text('# where the events come from\nschema = "schemas/github.herald"\n')
    return root


@pytest_lsp.fixture(config=CONFIG, params=EDITORS)
async def client(lsp_client: LanguageClient, request, authentik_root):
    await start(lsp_client, request.param, authentik_root)
    yield
    await lsp_client.shutdown_session()


@pytest_lsp.fixture(config=CONFIG, params=EDITORS)
async def github_client(lsp_client: LanguageClient, request, github_root):
    await start(lsp_client, request.param, github_root)
    yield
    await lsp_client.shutdown_session()


@pytest_lsp.fixture(config=CONFIG)
async def options_client(lsp_client: LanguageClient, tmp_path):
    """The schema given as an initialization option (an editor's workspace
    setting), as an absolute path; the workspace has no `herald.toml`."""
    schema = REPO / "examples" / "github" / "schema.herald"
    await start(lsp_client, "neovim", tmp_path, options={"schema": str(schema)})
    yield
    await lsp_client.shutdown_session()
