//! The error type of this crate: each variant displays as the one line a user should read.

use std::io;
use std::path::PathBuf;

use protocol::FileKind;

/// Result with [`ProfileError`] as the default error.
pub type Result<T, E = ProfileError> = std::result::Result<T, E>;

/// Everything that can go wrong with profiles, connection files and pid files.
///
/// Display is a single line naming the path involved and, where there is one, the fix.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    /// A profile name with characters outside `[A-Za-z0-9_.-]`, empty, or starting with `.`.
    #[error(
        "invalid profile name {name:?}: use only letters, digits, `_`, `.` and `-`, \
         not starting with `.`"
    )]
    BadName { name: String },

    /// [`crate::Profile::locate`] found no directory for the profile.
    #[error(
        "no profile `{name}` (looked for {}); create it with `cluster profile create {name}`",
        dir.display()
    )]
    NotFound { name: String, dir: PathBuf },

    /// The connection file does not exist.
    #[error(
        "no connection file at {}; is a cluster running? start one with `cluster start`",
        path.display()
    )]
    MissingFile { path: PathBuf },

    /// The connection file is group- or world-writable, so anyone could redirect us.
    #[error(
        "refusing to use {path}: it is group- or world-writable (mode {mode:04o}); \
         fix it with `chmod 600 {path}`",
        path = path.display()
    )]
    InsecureFile { path: PathBuf, mode: u32 },

    /// The connection file is not valid JSON or lacks fields.
    #[error("corrupt connection file {}: {message}", path.display())]
    CorruptFile { path: PathBuf, message: String },

    /// The connection file was written by a newer cluster than this one.
    #[error(
        "{} has connection-file format version {found}, but this build reads up to version \
         {supported}; upgrade cluster or restart the controller with this version",
        path.display()
    )]
    UnsupportedVersion {
        path: PathBuf,
        found: u64,
        supported: u32,
    },

    /// An engine file where a client file is expected, or the other way round.
    #[error(
        "{} is {} connection file, but {} file is needed here; use {} instead",
        path.display(),
        article(*found),
        article(*expected),
        suggestion.display()
    )]
    WrongKind {
        path: PathBuf,
        expected: FileKind,
        found: FileKind,
        /// The file that should have been given (same directory, the expected kind's name).
        suggestion: PathBuf,
    },

    /// A signature scheme other than `hmac-sha256`.
    #[error(
        "{} uses signature scheme {scheme:?}, but only {:?} is supported; \
         restart the controller to rewrite it",
        path.display(),
        crate::SIGNATURE_SCHEME
    )]
    BadSignatureScheme { path: PathBuf, scheme: String },

    /// Any other I/O failure (creating directories, writing, renaming, reading).
    #[error("cannot {action} {}: {error}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        error: io::Error,
    },
}

impl ProfileError {
    pub(crate) fn io(action: &'static str, path: impl Into<PathBuf>, error: io::Error) -> Self {
        ProfileError::Io {
            action,
            path: path.into(),
            error,
        }
    }
}

fn article(kind: FileKind) -> &'static str {
    match kind {
        FileKind::Client => "a client",
        FileKind::Engine => "an engine",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrong_kind_names_both_files() {
        let e = ProfileError::WrongKind {
            path: "/p/controller-engine.json".into(),
            expected: FileKind::Client,
            found: FileKind::Engine,
            suggestion: "/p/controller-client.json".into(),
        };
        assert_eq!(
            e.to_string(),
            "/p/controller-engine.json is an engine connection file, but a client file is \
             needed here; use /p/controller-client.json instead"
        );
    }

    #[test]
    fn bad_name_escapes_control_characters() {
        let e = ProfileError::BadName {
            name: "a\nb".into(),
        };
        assert!(!e.to_string().contains('\n'));
    }
}
