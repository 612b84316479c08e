package ovsdb

// KeyGen is the external_ids key of a row's generation, bumped by every
// guarded write (GuardBridge, GuardRootOtherConfig): the optimistic
// concurrency that keeps two writers from committing on the same read.
// Every other key is intent, and the intent package owns it.
const KeyGen = "ovsnet-gen"
