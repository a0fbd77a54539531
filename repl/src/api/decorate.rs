//! IPython Parallel's decorators in Lua form. `dview:parallel(f)` returns a callable that
//! splits its list arguments across the view's engines (as `scatter` splits), calls `f` on
//! each engine with its parts, and joins the results; its `:map(...)` calls `f`
//! element-wise, as `dview:map`. `view:remote(f)` returns a callable that runs `f(...)`
//! on the view (as `apply`). The function is shipped at each call, like any function
//! given to a view, so it sees the values its upvalues have then.

use super::args::{method, REST};
use super::{arg_values, err, func_ref, LuaView};
use mlua::{MetaMethod, UserData, UserDataMethods, Variadic};

/// `dview:parallel(f)`.
pub struct LuaParallel {
    /// The view the calls run on.
    pub view: LuaView,
    /// The function: a built-in's name or a Lua function.
    pub func: mlua::Value,
}

/// `view:remote(f)`.
pub struct LuaRemote {
    /// The view the calls run on.
    pub view: LuaView,
    /// The function: a built-in's name or a Lua function.
    pub func: mlua::Value,
}

fn parallel(_: &LuaParallel) -> &'static str {
    "parallel function"
}

impl UserData for LuaParallel {
    fn add_methods<M: UserDataMethods<Self>>(methods: &mut M) {
        methods.add_meta_method(MetaMethod::Call, |lua, this, a: Variadic<mlua::Value>| {
            let LuaView::Direct(d) = &this.view else {
                return Err(super::usage(
                    "parallel works on a direct view (dview, rc[{0, 1}])",
                ));
            };
            let func = func_ref(lua, &this.func)?;
            let ar = d.apply_parts_async(func, arg_values(&a)?).map_err(err)?;
            this.view.deliver(lua, ar)
        });
        method(
            methods,
            parallel,
            "map",
            &["list", REST],
            |lua, this, seqs: Variadic<mlua::Value>| {
                let ar = this.view.map_async(lua, &this.func, &seqs)?;
                this.view.deliver(lua, ar)
            },
        );
        methods.add_meta_method(MetaMethod::ToString, |_, this, ()| {
            Ok(format!("<parallel function on {}>", this.view.kind()))
        });
    }
}

impl UserData for LuaRemote {
    fn add_methods<M: UserDataMethods<Self>>(methods: &mut M) {
        methods.add_meta_method(MetaMethod::Call, |lua, this, a: Variadic<mlua::Value>| {
            let ar = this.view.apply_async(lua, &this.func, &a)?;
            this.view.deliver(lua, ar)
        });
        methods.add_meta_method(MetaMethod::ToString, |_, this, ()| {
            Ok(format!("<remote function on {}>", this.view.kind()))
        });
    }
}
