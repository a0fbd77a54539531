-- A plain CPU loop, 100 times: sum_range(10,000,000) adds 0 + 1 + ... + 9,999,999 one
-- number at a time (a native built-in). Load-balanced over every engine, then all on one
-- engine, and the speed-up.
--
--   cluster start -n 4 --daemon && cluster run examples/sum_range.lua

items = {}
for k = 1, 100 do items[k] = 10000000 end
expected = 10000000 * (10000000 - 1) // 2

ar = lview:map_async("sum_range", items)
parallel = ar:get()
t_parallel = ar.elapsed

-- The same 100 calls as one task on the first engine.
one = rc[rc.ids[1]]:map_async("sum_range", items)
serial = one:get()
t_serial = one.elapsed

for k = 1, #items do assert(parallel[k] == expected and serial[k] == expected, "wrong sum at " .. k) end
print(string.format("%-26s %10s", "100 x sum_range(10^7)", "seconds"))
print(string.format("%-26s %10.3f", "one engine", t_serial))
print(string.format("%-26s %10.3f", #rc.ids .. " engines, load-balanced", t_parallel))
print(string.format("speed-up %.2fx on %d engines; every sum is %d", t_serial / t_parallel, #rc.ids, expected))
