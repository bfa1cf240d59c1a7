//! The registry's runtime side: who a reading belongs to, who may sign in and which teams serve
//! which patients ([`directory`]), and the seed file format.
//!
//! The tables live in `migrations/*/0001_registry.sql` and are written through
//! [`crate::storage::Storage`] (the `admin` subcommand). Ingest reads them through [`LoanBook`].

pub mod directory;
pub mod loan_book;
pub mod seed;

pub use directory::Directory;
pub use loan_book::{LoanBook, OwnerError};
pub use seed::RegistryFile;
