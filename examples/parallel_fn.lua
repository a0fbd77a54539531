-- A function of your own, mapped over the engines: IPython Parallel's
-- `@lview.parallel()` decorator, in the REPL language. The function travels to the
-- engines as source (with the values it captured) and is compiled there once.
--
--   cluster start -n 4 --daemon && cluster run examples/parallel_fn.lua

function f(x)
  return 10 * x ^ 4 + x
end

-- The direct way: map it over the load-balanced view.
ys = lview:map_sync(f, range(0, 10))
ys

-- The decorator way: wrap a function once, then call .map on the wrapper.
function parallel(view, fn)
  return {map = function(items) return view:map_sync(fn, items) end, fn = fn}
end
pf = parallel(lview, f)
zs = pf.map(range(0, 10))

-- A closure over a local value travels with its value.
do
  local scale = 3
  scaled = parallel(lview, function(x) return scale * f(x) end)
end
ws = scaled.map(range(0, 10))
ws

-- Same answers as computing locally.
for k, x in ipairs(range(0, 10)) do
  assert(ys[k] == f(x) and zs[k] == f(x), "f(" .. x .. ") came back as " .. tostring(ys[k]))
  assert(ws[k] == 3 * f(x), "scaled f(" .. x .. ") came back as " .. tostring(ws[k]))
end
print("10 results, same as local: ok")
