//! The HLS proxy: the URL codec and signatures ([`token`]), the
//! byte-preserving playlist rewriter ([`rewrite`]), both pure, the memory of
//! signed paths that spares reloads most of the signing ([`path_cache`]),
//! which endpoint a URL targets ([`kind`]), and the upstream I/O
//! ([`upstream`]).

pub mod kind;
pub mod path_cache;
pub mod rewrite;
pub mod token;
pub mod upstream;
