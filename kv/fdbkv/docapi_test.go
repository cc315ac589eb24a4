package fdbkv

import (
	"go/types"
	"os"
	"strings"
	"testing"
)

// The adapter's API that only the fdb build declares (Wrap, Unwrap,
// Transact) is listed in the package documentation, so that go doc shows
// it without build tags; this test keeps the list equal to the tagged
// declarations, signature by signature.
func TestDocListsTaggedAPI(t *testing.T) {
	stub, adapter := declareBoth(t)
	doc, err := os.ReadFile("doc.go")
	if err != nil {
		t.Fatal(err)
	}
	qual := func(p *types.Package) string {
		if p.Path() == thisPackage {
			return ""
		}
		return p.Name()
	}
	listed := 0
	for _, name := range adapter.Scope().Names() {
		obj := adapter.Scope().Lookup(name)
		if !obj.Exported() || stub.Scope().Lookup(name) != nil {
			continue
		}
		fn, ok := obj.(*types.Func)
		if !ok {
			t.Errorf("%s: declared only with the fdb tag and not a function; list it in doc.go's tagged API by hand and extend this test", name)
			continue
		}
		line := "//\t" + types.ObjectString(fn, qual)
		if !strings.Contains(string(doc), line+"\n") {
			t.Errorf("doc.go does not list %q", strings.TrimPrefix(line, "//\t"))
		}
		listed++
	}
	if listed == 0 {
		t.Fatal("found no fdb-only functions: the test is not looking at the tagged build")
	}
}
