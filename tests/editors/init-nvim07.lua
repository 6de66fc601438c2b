-- docs/editors.md's Neovim set-up for Neovim 0.7 (Debian 12's), as
-- tests/editors/nvim-check.sh loads it. Keep the two in step.
-- 0.7 reads vim.filetype.add() only with do_filetype_lua; this works in all.
vim.api.nvim_create_autocmd({ "BufRead", "BufNewFile" }, { pattern = "*.herald", command = "setfiletype herald" })
local herald_clients = {} -- one server per workspace root
vim.api.nvim_create_autocmd("FileType", {
  pattern = "herald",
  callback = function(args)
    local dir = vim.fn.fnamemodify(vim.api.nvim_buf_get_name(args.buf), ":p:h")
    local toml = vim.fn.findfile("herald.toml", dir .. ";")
    local root = toml ~= "" and vim.fn.fnamemodify(toml, ":p:h") or dir
    if not herald_clients[root] then
      herald_clients[root] = vim.lsp.start_client({
        name = "herald",
        cmd = { "herald", "lsp" },
        root_dir = root,
        -- init_options = { schema = "schema.herald" },
      })
    end
    vim.lsp.buf_attach_client(args.buf, herald_clients[root])
  end,
})
