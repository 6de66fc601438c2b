#!/usr/bin/env bash
# Checks docs/editors.md's Neovim set-up for real: Neovim (headless), with the
# page's Neovim 0.7 snippet as its init.lua (taken out of the page, so what is
# checked is what users copy), opens a policy with a mistake, receives
# herald's diagnostic, applies the quick fix, hovers and formats; the
# formatted buffer must equal `herald fmt`'s output.
#
#   cargo build --release && tests/editors/nvim-check.sh
#
# Needs `nvim` (Debian 12: `apt-get install neovim`, 0.7.2). Not part of
# `cargo test`: CI has no Neovim; tests/lsp_third_party.rs covers the
# protocol with Neovim's recorded client capabilities.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
export PATH="$repo/target/release:$PATH"
command -v nvim >/dev/null || { echo "nvim-check: no nvim on PATH" >&2; exit 2; }
command -v herald >/dev/null || { echo "nvim-check: build herald first (cargo build --release)" >&2; exit 2; }

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
# The first ```lua block after the line that starts with "Neovim 0.7".
awk '/^Neovim 0\.7/ { found = 1 } found && /^```lua/ { on = 1; next } on && /^```/ { exit } on { print }' \
  "$repo/docs/editors.md" > "$work/init.lua"
grep -q 'herald' "$work/init.lua" || { echo "nvim-check: no Neovim 0.7 snippet in docs/editors.md" >&2; exit 1; }
# A workspace with a herald.toml (no schema key: the built-in schema).
echo '# herald workspace' > "$work/herald.toml"
cat > "$work/login.herald" <<'HERALD'
const office_ip = "10.0.0.1"
rule   outside_login{match login{user.username:name}
guard   event.client_ipp!=office_ip
action log( "login by {name}" )}
HERALD
export HERALD_NVIM_OUT="$work/formatted.herald"
(cd "$work" && timeout 120 nvim --headless -n -i NONE -u "$work/init.lua" login.herald \
  -c "luafile $here/nvim-check.lua")
sed 's/client_ipp/client_ip/' "$work/login.herald" > "$work/expected.herald"
herald fmt "$work/expected.herald"
diff -u "$work/expected.herald" "$HERALD_NVIM_OUT"
echo "nvim-check: ok (Neovim $(nvim --version | head -1 | cut -d' ' -f2))"
