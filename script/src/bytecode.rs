//! Reads the binary chunks Lua 5.4 writes (`string.dump`, mlua's `Function::dump`), for two
//! questions the debug API cannot answer: which global names a function reads (its
//! `GETTABUP _ENV "name"` instructions, nested functions included), and whether two
//! functions compiled in different places are the same code (everything but where their
//! upvalues come from).
//!
//! The format is `ldump.c` of Lua 5.4: a 31-byte header, the main function's upvalue count,
//! then the function, each of its prototypes nested the same way. Nothing here executes or
//! loads a chunk.

use std::collections::BTreeSet;

/// A constant of a function.
#[derive(Debug, Clone, PartialEq)]
pub enum Constant {
    Nil,
    Bool(bool),
    Int(i64),
    Float(u64),
    Str(Vec<u8>),
}

/// One function prototype, as dumped.
#[derive(Debug, Clone, PartialEq)]
pub struct Proto {
    pub num_params: u8,
    pub is_vararg: u8,
    pub max_stack: u8,
    pub code: Vec<u32>,
    pub constants: Vec<Constant>,
    /// Where each upvalue comes from: (in the enclosing function's stack?, index, kind).
    pub upvalues: Vec<(u8, u8, u8)>,
    pub protos: Vec<Proto>,
    /// Upvalue names (empty in a stripped dump).
    pub upvalue_names: Vec<Option<Vec<u8>>>,
}

/// Why a dump could not be read.
#[derive(Debug, PartialEq, thiserror::Error)]
#[error("unreadable Lua 5.4 bytecode: {0}")]
pub struct DumpError(&'static str);

const HEADER_LEN: usize = 31;
const SIGNATURE: &[u8] = b"\x1bLua\x54\x00";

const OP_MASK: u32 = 0x7f;
const OP_GETTABUP: u32 = 11;
const OP_SETTABUP: u32 = 15;

struct Reader<'a> {
    b: &'a [u8],
    i: usize,
}

impl Reader<'_> {
    fn byte(&mut self) -> Result<u8, DumpError> {
        let v = *self.b.get(self.i).ok_or(DumpError("truncated"))?;
        self.i += 1;
        Ok(v)
    }

    fn bytes(&mut self, n: usize) -> Result<&[u8], DumpError> {
        let end = self.i.checked_add(n).ok_or(DumpError("bad size"))?;
        let s = self.b.get(self.i..end).ok_or(DumpError("truncated"))?;
        self.i = end;
        Ok(s)
    }

    /// `dumpSize`: 7 bits a byte, most significant first, the last byte flagged with 0x80.
    fn size(&mut self) -> Result<usize, DumpError> {
        let mut x: usize = 0;
        loop {
            let b = self.byte()?;
            x = x
                .checked_mul(128)
                .and_then(|x| x.checked_add((b & 0x7f) as usize))
                .ok_or(DumpError("size overflow"))?;
            if b & 0x80 != 0 {
                return Ok(x);
            }
        }
    }

    fn count(&mut self) -> Result<usize, DumpError> {
        let n = self.size()?;
        // Every element takes at least one byte: a count larger than what is left is corrupt.
        if n > self.b.len() - self.i {
            return Err(DumpError("count beyond the end"));
        }
        Ok(n)
    }

    fn string(&mut self) -> Result<Option<Vec<u8>>, DumpError> {
        match self.size()? {
            0 => Ok(None),
            n => Ok(Some(self.bytes(n - 1)?.to_vec())),
        }
    }

    fn u64(&mut self) -> Result<u64, DumpError> {
        let s = self.bytes(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(s);
        Ok(u64::from_le_bytes(a))
    }

    fn function(&mut self, depth: usize) -> Result<Proto, DumpError> {
        if depth > 200 {
            return Err(DumpError("functions nested too deep"));
        }
        let _source = self.string()?;
        let _line_defined = self.size()?;
        let _last_line = self.size()?;
        let num_params = self.byte()?;
        let is_vararg = self.byte()?;
        let max_stack = self.byte()?;
        let n = self.count()?;
        let code = self
            .bytes(n.checked_mul(4).ok_or(DumpError("bad size"))?)?
            .chunks_exact(4)
            .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        let n = self.count()?;
        let mut constants = Vec::with_capacity(n);
        for _ in 0..n {
            constants.push(match self.byte()? {
                0 => Constant::Nil,
                1 => Constant::Bool(false),
                17 => Constant::Bool(true),
                3 => Constant::Int(self.u64()? as i64),
                19 => Constant::Float(self.u64()?),
                4 | 20 => Constant::Str(self.string()?.unwrap_or_default()),
                _ => return Err(DumpError("unknown constant type")),
            });
        }
        let n = self.count()?;
        let mut upvalues = Vec::with_capacity(n);
        for _ in 0..n {
            upvalues.push((self.byte()?, self.byte()?, self.byte()?));
        }
        let n = self.count()?;
        let mut protos = Vec::with_capacity(n);
        for _ in 0..n {
            protos.push(self.function(depth + 1)?);
        }
        // Debug information: line info, absolute line info, locals, upvalue names.
        let n = self.count()?;
        self.bytes(n)?;
        let n = self.count()?;
        for _ in 0..n {
            self.size()?;
            self.size()?;
        }
        let n = self.count()?;
        for _ in 0..n {
            self.string()?;
            self.size()?;
            self.size()?;
        }
        let n = self.count()?;
        let mut upvalue_names = Vec::with_capacity(n);
        for _ in 0..n {
            upvalue_names.push(self.string()?);
        }
        Ok(Proto {
            num_params,
            is_vararg,
            max_stack,
            code,
            constants,
            upvalues,
            protos,
            upvalue_names,
        })
    }
}

impl Proto {
    /// Reads a dump made by this Lua (5.4, same integer and float sizes).
    pub fn parse(dump: &[u8]) -> Result<Proto, DumpError> {
        if dump.len() < HEADER_LEN + 1 || !dump.starts_with(SIGNATURE) {
            return Err(DumpError("not a Lua 5.4 chunk"));
        }
        let mut r = Reader {
            b: dump,
            i: HEADER_LEN + 1,
        };
        r.function(0)
    }

    /// Whether two functions are the same code: instructions, constants, parameters and
    /// nested functions equal, upvalues in the same number but possibly captured from
    /// different places.
    pub fn same_code(&self, other: &Proto) -> bool {
        self.num_params == other.num_params
            && self.is_vararg == other.is_vararg
            && self.max_stack == other.max_stack
            && self.code == other.code
            && self.constants == other.constants
            && self.upvalues.len() == other.upvalues.len()
            && self.protos.len() == other.protos.len()
            && self
                .protos
                .iter()
                .zip(&other.protos)
                .all(|(a, b)| a.same_code(b))
    }

    /// The global names this function and the functions nested in it read (needs a dump
    /// with debug information, which names the `_ENV` upvalue).
    pub fn global_reads(&self) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        self.collect_reads(&mut out);
        out
    }

    /// The global names this function and the functions nested in it assign.
    pub fn global_writes(&self) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        self.collect_writes(&mut out);
        out
    }

    fn env_upvalues(&self) -> Vec<u32> {
        self.upvalue_names
            .iter()
            .enumerate()
            .filter(|(_, n)| n.as_deref() == Some(b"_ENV".as_slice()))
            .map(|(i, _)| i as u32)
            .collect()
    }

    fn collect_writes(&self, out: &mut BTreeSet<String>) {
        let env = self.env_upvalues();
        for ins in &self.code {
            // SETTABUP A B C: UpValue[A][K[B]] := RK(C).
            if ins & OP_MASK != OP_SETTABUP {
                continue;
            }
            let a = (ins >> 7) & 0xff;
            let b = (ins >> 16) & 0xff;
            if env.contains(&a) {
                if let Some(Constant::Str(s)) = self.constants.get(b as usize) {
                    out.insert(String::from_utf8_lossy(s).into_owned());
                }
            }
        }
        for p in &self.protos {
            p.collect_writes(out);
        }
    }

    fn collect_reads(&self, out: &mut BTreeSet<String>) {
        let env: Vec<u32> = self
            .upvalue_names
            .iter()
            .enumerate()
            .filter(|(_, n)| n.as_deref() == Some(b"_ENV".as_slice()))
            .map(|(i, _)| i as u32)
            .collect();
        if !env.is_empty() {
            for ins in &self.code {
                if ins & OP_MASK != OP_GETTABUP {
                    continue;
                }
                let b = (ins >> 16) & 0xff;
                let c = (ins >> 24) & 0xff;
                if env.contains(&b) {
                    if let Some(Constant::Str(s)) = self.constants.get(c as usize) {
                        out.insert(String::from_utf8_lossy(s).into_owned());
                    }
                }
            }
        }
        for p in &self.protos {
            p.collect_reads(out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mlua::Lua;

    fn func(lua: &Lua, src: &str) -> mlua::Function {
        lua.load(src).eval().unwrap()
    }

    #[test]
    fn global_reads_include_nested_functions_and_skip_locals_and_fields() {
        let lua = Lua::new();
        let f = func(
            &lua,
            "local k = 2 return function(x) local y = helper(x) + k return map(function(v) return other(v) + t.field end, y) end",
        );
        let p = Proto::parse(&f.dump(false)).unwrap();
        let reads: Vec<String> = p.global_reads().into_iter().collect();
        assert_eq!(reads, vec!["helper", "map", "other", "t"]);
    }

    #[test]
    fn global_writes_include_nested_functions() {
        let lua = Lua::new();
        let f = func(
            &lua,
            "local k return function(x) count = count + 1 k = x return function() last = x end end",
        );
        let p = Proto::parse(&f.dump(false)).unwrap();
        let writes: Vec<String> = p.global_writes().into_iter().collect();
        assert_eq!(writes, vec!["count", "last"]);
    }

    #[test]
    fn the_same_code_compiled_elsewhere_compares_equal() {
        let lua = Lua::new();
        let a = func(
            &lua,
            "local z, k = 1, 3 return function(x) return x * k + 1.5 end",
        );
        let b = func(&lua, "local k return function(x) return x * k + 1.5 end");
        let c = func(&lua, "local k return function(x) return x * k + 2.5 end");
        let pa = Proto::parse(&a.dump(true)).unwrap();
        let pb = Proto::parse(&b.dump(true)).unwrap();
        let pc = Proto::parse(&c.dump(true)).unwrap();
        assert_ne!(
            pa.upvalues, pb.upvalues,
            "captured from different registers"
        );
        assert!(pa.same_code(&pb));
        assert!(!pa.same_code(&pc));
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(Proto::parse(b"").is_err());
        assert!(Proto::parse(b"\x1bLua\x54\x00 and then nonsense that is long enough").is_err());
        let lua = Lua::new();
        let dump = func(&lua, "return function(x) return x end").dump(false);
        for cut in 0..dump.len() {
            let _ = Proto::parse(&dump[..cut]);
        }
    }
}
