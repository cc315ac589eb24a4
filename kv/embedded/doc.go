// Package embedded is an embedded database with FoundationDB's transaction
// semantics, on Pebble: the default backend of idemkv and FoundationDB's
// stand-in in every test.
//
//	db, err := embedded.Open(dir, nil) // or embedded.OpenMem(nil)
//	tr, err := db.CreateTransaction(ctx)
//	tr.Set(key, value)
//	err = tr.Commit().Err()
//
// (Design notes follow in later sections.)
package embedded
