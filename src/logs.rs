//! Reading and merging the nodes' JSON logs.
