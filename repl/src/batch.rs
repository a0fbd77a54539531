//! Scripts and piped input (`cluster run file.lua`, `cluster repl < file`): the text is cut
//! into cells, the shortest runs of lines that make complete input, and they run in order
//! without prompts; the first error stops the script, reported as a failed command
//! (`error: `) followed by the REPL's line for it, with its file and line (`report.rs`).

use crate::cell::CellError;
use crate::session::Session;
use crate::{editor, report, EXIT_FAILED, EXIT_OK};
use mlua::Lua;

/// One cell of a script.
#[derive(Debug, PartialEq)]
pub struct ScriptCell {
    /// The line (from 1) the cell starts on.
    pub first_line: usize,
    /// The cell's lines, each ending with a newline.
    pub code: String,
}

impl ScriptCell {
    /// The code padded with newlines so that Lua's line numbers are the file's.
    pub fn padded(&self) -> String {
        format!("{}{}", "\n".repeat(self.first_line - 1), self.code)
    }
}

/// Cuts a script into cells: blank lines and comment lines between cells are skipped, Lua
/// runs until its blocks and brackets close, a `%%` cell magic until an empty line.
pub fn split(text: &str) -> Vec<ScriptCell> {
    let checker = Lua::new();
    let mut cells = Vec::new();
    let mut cell = String::new();
    let mut first_line = 0usize;
    let lines: Vec<&str> = text.lines().collect();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        i += 1;
        if cell.is_empty() {
            if line.trim().is_empty()
                || line.trim_start().starts_with("--") && !line.contains("--[[")
            {
                continue;
            }
            first_line = i;
        }
        cell.push_str(line);
        cell.push('\n');
        let cell_magic = cell.trim_start().starts_with("%%");
        let more = if cell_magic {
            !line.trim().is_empty() && i < lines.len()
        } else {
            editor::is_incomplete(&checker, cell.trim_end()) && i < lines.len()
        };
        if more {
            continue;
        }
        cells.push(ScriptCell {
            first_line,
            code: std::mem::take(&mut cell),
        });
    }
    cells
}

impl Session {
    /// Runs a script whose chunk name is `chunk` (`@path` or `=stdin`); returns the exit
    /// code: 0, or that of the first failing cell.
    pub(crate) fn batch(&mut self, text: &str, chunk: &str) -> i32 {
        self.ctx().record_source(chunk, text);
        for cell in split(text) {
            match self.run_cell(&cell.padded(), chunk) {
                Ok(()) => {}
                Err(CellError::Exit) => return EXIT_OK,
                Err(CellError::Failed(msg, code)) => {
                    let at = report::Place {
                        chunk,
                        line: Some(cell.first_line),
                    };
                    // A failed script is a failed command: `error: ` and the REPL's line.
                    eprintln!("error: {}", report::error_text(&msg, code, &at));
                    return code.unwrap_or(EXIT_FAILED);
                }
            }
        }
        EXIT_OK
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cells(text: &str) -> Vec<(usize, String)> {
        split(text)
            .into_iter()
            .map(|c| (c.first_line, c.code))
            .collect()
    }

    #[test]
    fn scripts_are_cut_where_input_is_complete() {
        let text = "-- a comment\n\nx = 1\nfunction f(a)\n  return a\nend\n%%px\ny = 2\n\n%who\n";
        assert_eq!(
            cells(text),
            vec![
                (3, "x = 1\n".to_string()),
                (4, "function f(a)\n  return a\nend\n".to_string()),
                (7, "%%px\ny = 2\n\n".to_string()),
                (10, "%who\n".to_string()),
            ]
        );
    }

    #[test]
    fn a_line_ending_in_an_expression_after_statements_is_a_whole_cell() {
        let cut = cells("t = 0; for i = 1, 3 do t = t + i end; t\n#t\n");
        assert_eq!(
            cut,
            vec![
                (1, "t = 0; for i = 1, 3 do t = t + i end; t\n".to_string()),
                (2, "#t\n".to_string()),
            ]
        );
    }

    #[test]
    fn padding_keeps_the_file_s_line_numbers() {
        let cut = split("\n\nprint(1)\n");
        assert_eq!(cut[0].padded(), "\n\nprint(1)\n");
    }

    #[test]
    fn an_unfinished_block_at_the_end_is_one_cell() {
        let cut = split("x = 1\nfor i = 1, 2 do\n");
        assert_eq!(cut.len(), 2);
        assert_eq!(cut[1].code, "for i = 1, 2 do\n");
    }
}
