-- A tour of the cluster, after the IPython Parallel tour: who is there, a word from each
-- engine, one namespace per engine (execute, push, pull, Reference).
--
--   cluster start -n 4 --daemon && cluster run examples/tour.lua
--
-- An expression alone on a line prints its value; `assert` stops the script (non-zero
-- exit, naming the line) if an answer is wrong (`do assert(...) end` checks without
-- printing the `true` a call alone on its line would show).

-- The engines, by id.
rc.ids
n = #rc.ids
do assert(n >= 1, "no engines are registered") end
print(string.format("%d engines registered", n))

-- A hello string from every engine. `scatter` gives each engine its slice of the list:
-- here, its own id.
dview:scatter("id", rc.ids)
dview:execute('me = id[1]; hello = "hello from engine " .. me')
hellos = dview:pull("hello")
hellos
for k, h in ipairs(hellos) do assert(h == "hello from engine " .. rc.ids[k], h) end

-- Every engine is its own process.
pids = dview:apply_sync("getpid")
pids
seen = {}
for _, p in ipairs(pids) do assert(not seen[p], "two engines share pid " .. p); seen[p] = true end
print(string.format("%d distinct engine processes", #pids))

-- Code runs in each engine's namespace; names it sets persist until the next pull.
dview:execute("a = 6; b = 7; c = a * b")
dview:pull("c")
for _, c in ipairs(dview:pull("c")) do assert(c == 42) end

-- %px runs a line on every engine and shows what each printed.
%px print("engine " .. me .. " has c = " .. c)

-- Push data to every engine, then hand it to a function by name: Reference resolves on
-- the engine, so the list travels once, not with every call.
dview:push({shared_data = {50, 100}})
lens = dview:apply_sync("len", Reference("shared_data"))
lens
for _, l in ipairs(lens) do assert(l == 2) end

-- One engine alone, as rc[id].
rc[rc.ids[1]]:apply_sync("multiply", 6, 7)
print("tour: ok")
