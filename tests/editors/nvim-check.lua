-- Run by tests/editors/nvim-check.sh inside `nvim --headless` with the
-- policy open: waits for herald's diagnostic, applies its quick fix the way
-- `vim.lsp.buf.code_action()` would, asks for hover and formats. Prints what
-- it saw; exits 1 (cquit) at the first thing that is not as expected.
local function out(s) io.stdout:write(s .. "\n") end
local function fail(s) out("FAIL: " .. s); vim.cmd("cquit 1") end
local buf = vim.api.nvim_get_current_buf()

local function diags() return vim.diagnostic.get(buf) end
if not vim.wait(15000, function() return #diags() > 0 end, 50) then
  return fail("no diagnostics arrived")
end
for _, d in ipairs(diags()) do
  local code = d.code or (d.user_data and d.user_data.lsp and d.user_data.lsp.code)
  out(string.format("diagnostic %s %d:%d %s", code, d.lnum + 1, d.col + 1, d.message:gsub("\n", " | ")))
end

-- The quick fix: the code actions at the diagnostic, applied as the editor does.
local d = diags()[1]
local params = {
  textDocument = vim.lsp.util.make_text_document_params(buf),
  range = { start = { line = d.lnum, character = d.col }, ["end"] = { line = d.end_lnum, character = d.end_col } },
  -- As vim.lsp.buf.code_action() in 0.7 builds its context.
  context = { diagnostics = vim.lsp.diagnostic.get_line_diagnostics(buf, d.lnum) },
}
local res = vim.lsp.buf_request_sync(buf, "textDocument/codeAction", params, 10000)
local action
for _, r in pairs(res or {}) do action = action or (r.result or {})[1] end
if not action then return fail("no code action: " .. vim.inspect(res)) end
out("code action: " .. action.title)
vim.lsp.util.apply_workspace_edit(action.edit, "utf-16")
out("line after the fix: " .. vim.api.nvim_buf_get_lines(buf, d.lnum, d.lnum + 1, false)[1])
if not vim.wait(15000, function() return #diags() == 0 end, 50) then
  return fail("the diagnostic stayed after the fix")
end
out("diagnostics after the fix: 0")

-- Hover on `name` in the action's string.
local lines = vim.api.nvim_buf_get_lines(buf, 0, -1, false)
local pos
for i, l in ipairs(lines) do
  local c = l:find("{name}", 1, true)
  if c then pos = { line = i - 1, character = c } end
end
res = vim.lsp.buf_request_sync(buf, "textDocument/hover",
  { textDocument = vim.lsp.util.make_text_document_params(buf), position = pos }, 10000)
local hover
for _, r in pairs(res or {}) do hover = hover or (r.result and r.result.contents.value) end
if not hover or not hover:find("name: string", 1, true) then return fail("hover: " .. tostring(hover)) end
out("hover: " .. hover:gsub("\n", " "))

-- Formatting, as `:lua vim.lsp.buf.formatting_sync()` (0.7's name).
vim.lsp.buf.formatting_sync(nil, 10000)
local formatted = table.concat(vim.api.nvim_buf_get_lines(buf, 0, -1, false), "\n") .. "\n"
io.open(vim.env.HERALD_NVIM_OUT, "w"):write(formatted)
out("formatted: written")
vim.cmd("qall!")
