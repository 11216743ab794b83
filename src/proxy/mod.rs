//! The HLS proxy: the URL codec and signatures ([`token`]), the
//! byte-preserving playlist rewriter ([`rewrite`]), both pure, and the
//! upstream I/O ([`upstream`]).

pub mod rewrite;
pub mod token;
pub mod upstream;
