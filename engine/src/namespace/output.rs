//! What a task prints: kept up to a limit per task, the rest counted and reported.

use super::OUTPUT_LIMIT;

/// Output printed by the running task, bounded to [`OUTPUT_LIMIT`] bytes.
#[derive(Default)]
pub(super) struct Output {
    text: String,
    dropped: usize,
}

impl Output {
    pub(super) fn line(&mut self, bytes: &[u8]) {
        let line = String::from_utf8_lossy(bytes);
        let need = line.len() + 1;
        if self.dropped == 0 && self.text.len() + need <= OUTPUT_LIMIT {
            self.text.push_str(&line);
            self.text.push('\n');
            return;
        }
        let mut room = OUTPUT_LIMIT.saturating_sub(self.text.len());
        if self.dropped > 0 {
            room = 0;
        }
        while room > 0 && !line.is_char_boundary(room.min(line.len())) {
            room -= 1;
        }
        let kept = room.min(line.len());
        self.text.push_str(&line[..kept]);
        self.dropped += need - kept;
    }

    pub(super) fn take(&mut self) -> String {
        let mut text = std::mem::take(&mut self.text);
        if self.dropped > 0 {
            if !text.ends_with('\n') {
                text.push('\n');
            }
            text.push_str(&format!(
                "[output truncated: {} more bytes not shown; at most {} MiB is kept per task]\n",
                self.dropped,
                OUTPUT_LIMIT >> 20
            ));
            self.dropped = 0;
        }
        text
    }
}
