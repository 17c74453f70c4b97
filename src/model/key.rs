//! Order-preserving, self-delimiting encoding of item keys.
