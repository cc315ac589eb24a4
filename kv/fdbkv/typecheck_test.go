package fdbkv

// This file type-checks the fdb-tagged adapter, and its fdb-tagged tests,
// against the real FoundationDB bindings' source in the module cache —
// without libfdb_c or its headers, which no machine here has. go/build picks
// the files a `-tags fdb` cgo build would compile, go/parser parses them and
// go/types checks them with FakeImportC (cgo's C.xxx references are
// accepted unchecked; everything on the Go side of the bindings is checked).
// Imports are type-checked from source, recursively: the standard library,
// the bindings, this module's packages and any other module in go.mod.
// Dependencies are checked without function bodies (their exported API is
// what matters, and it is much faster); the adapter and the bindings are
// checked in full.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"go/ast"
	"go/build"
	"go/parser"
	"go/token"
	"go/types"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/idemkv/idemkv/kv"
)

const (
	bindingsModule = "github.com/apple/foundationdb/bindings/go"
	bindingsFDB    = bindingsModule + "/src/fdb"
	thisPackage    = "github.com/idemkv/idemkv/kv/fdbkv"
)

// module is one module of the build list with its directory on disk.
type module struct{ Path, Dir string }

// srcImporter type-checks packages from source on demand and caches them.
// It is a types.ImporterFrom.
type srcImporter struct {
	fset    *token.FileSet
	ctx     build.Context
	goroot  string
	modules []module // longest path first
	// full lists the import paths checked with function bodies.
	full map[string]bool

	pkgs   map[string]*types.Package
	errs   []error // type errors in any package checked so far
	active map[string]bool
}

func newSrcImporter(t testing.TB) *srcImporter {
	t.Helper()
	out, err := exec.Command("go", "list", "-m", "-json", "all").Output()
	if err != nil {
		t.Fatalf("go list -m all: %v", err)
	}
	var mods []module
	dec := json.NewDecoder(bytes.NewReader(out))
	for dec.More() {
		var m module
		if err := dec.Decode(&m); err != nil {
			t.Fatalf("decoding go list output: %v", err)
		}
		if m.Dir != "" {
			mods = append(mods, m)
		}
	}
	sort.Slice(mods, func(i, j int) bool { return len(mods[i].Path) > len(mods[j].Path) })
	goroot, err := exec.Command("go", "env", "GOROOT").Output()
	if err != nil {
		t.Fatalf("go env GOROOT: %v", err)
	}

	ctx := build.Default
	ctx.BuildTags = []string{"fdb"}
	ctx.CgoEnabled = true
	return &srcImporter{
		fset:    token.NewFileSet(),
		ctx:     ctx,
		goroot:  string(bytes.TrimSpace(goroot)),
		modules: mods,
		full:    map[string]bool{bindingsFDB: true},
		pkgs:    map[string]*types.Package{"unsafe": types.Unsafe},
		active:  map[string]bool{},
	}
}

// dirOf finds the directory holding an import path: in a module of the
// build list, else in GOROOT (or GOROOT's vendor tree, for the standard
// library's own dependencies).
func (imp *srcImporter) dirOf(path string) (string, error) {
	for _, m := range imp.modules {
		if path == m.Path || strings.HasPrefix(path, m.Path+"/") {
			return filepath.Join(m.Dir, filepath.FromSlash(strings.TrimPrefix(path, m.Path))), nil
		}
	}
	for _, d := range []string{
		filepath.Join(imp.goroot, "src", filepath.FromSlash(path)),
		filepath.Join(imp.goroot, "src", "vendor", filepath.FromSlash(path)),
	} {
		if fi, err := os.Stat(d); err == nil && fi.IsDir() {
			return d, nil
		}
	}
	return "", fmt.Errorf("cannot find package %q in the module cache or GOROOT", path)
}

func (imp *srcImporter) Import(path string) (*types.Package, error) {
	return imp.ImportFrom(path, "", 0)
}

func (imp *srcImporter) ImportFrom(path, _ string, _ types.ImportMode) (*types.Package, error) {
	if p, ok := imp.pkgs[path]; ok {
		return p, nil
	}
	if imp.active[path] {
		return nil, fmt.Errorf("import cycle through %q", path)
	}
	imp.active[path] = true
	defer delete(imp.active, path)
	dir, err := imp.dirOf(path)
	if err != nil {
		return nil, err
	}
	bp, err := imp.ctx.ImportDir(dir, 0)
	if err != nil {
		return nil, fmt.Errorf("go/build %s: %w", path, err)
	}
	files := append(append([]string{}, bp.GoFiles...), bp.CgoFiles...)
	pkg, errs := imp.check(path, dir, files, nil, !imp.full[path])
	imp.errs = append(imp.errs, errs...)
	imp.pkgs[path] = pkg
	return pkg, nil
}

// check parses and type-checks one package. overlay replaces (or adds) file
// contents by base name. It returns every type error.
func (imp *srcImporter) check(path, dir string, names []string, overlay map[string]string, skipBodies bool) (*types.Package, []error) {
	var files []*ast.File
	var errs []error
	seen := map[string]bool{}
	parse := func(name string, src any) {
		f, err := parser.ParseFile(imp.fset, filepath.Join(dir, name), src, parser.SkipObjectResolution)
		if err != nil {
			errs = append(errs, err)
			return
		}
		files = append(files, f)
	}
	for _, name := range names {
		seen[name] = true
		if src, ok := overlay[name]; ok {
			parse(name, src)
		} else {
			parse(name, nil)
		}
	}
	for name, src := range overlay {
		if !seen[name] {
			parse(name, src)
		}
	}
	conf := types.Config{
		Importer:         imp,
		FakeImportC:      true,
		IgnoreFuncBodies: skipBodies,
		Sizes:            types.SizesFor("gc", imp.ctx.GOARCH),
		Error:            func(err error) { errs = append(errs, err) },
	}
	pkg, _ := conf.Check(path, imp.fset, files, nil)
	return pkg, errs
}

var (
	sharedImpOnce sync.Once
	sharedImp     *srcImporter
)

// importer returns the importer shared by the tests in this file, so that
// the standard library and the bindings are checked once.
func importer(t *testing.T) *srcImporter {
	sharedImpOnce.Do(func() { sharedImp = newSrcImporter(t) })
	if sharedImp == nil {
		t.Fatal("importer setup failed in an earlier test")
	}
	return sharedImp
}

// checkAdapter type-checks this package as `go test -tags fdb` would build
// it: the fdb-tagged and untagged files and in-package tests, then the
// external test package against that. overlay replaces files by base name.
func checkAdapter(t *testing.T, imp *srcImporter, overlay map[string]string) (*types.Package, []error) {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	bp, err := imp.ctx.ImportDir(dir, 0)
	if err != nil {
		t.Fatalf("go/build with -tags fdb: %v", err)
	}
	names := append(append(append([]string{}, bp.GoFiles...), bp.CgoFiles...), bp.TestGoFiles...)
	pkg, errs := imp.check(thisPackage, dir, names, overlay, false)
	if len(bp.XTestGoFiles) > 0 {
		// The external tests import the package under test, augmented
		// with its in-package tests, as go test builds it.
		saved, had := imp.pkgs[thisPackage]
		imp.pkgs[thisPackage] = pkg
		_, xerrs := imp.check(thisPackage+"_test", dir, bp.XTestGoFiles, nil, false)
		errs = append(errs, xerrs...)
		if had {
			imp.pkgs[thisPackage] = saved
		} else {
			delete(imp.pkgs, thisPackage)
		}
	}
	return pkg, errs
}

// TestTypecheckAdapterAgainstBindings is the evidence that the fdb-tagged
// adapter compiles against the real bindings: it fails on any type error in
// the adapter, its tagged tests, the bindings or anything they import.
func TestTypecheckAdapterAgainstBindings(t *testing.T) {
	start := time.Now()
	imp := importer(t)
	pkg, errs := checkAdapter(t, imp, nil)
	errs = append(errs, imp.errs...)
	for _, err := range errs {
		t.Error(err)
	}
	t.Logf("type-checked %s (-tags fdb) and %d imported packages from source in %v",
		thisPackage, len(imp.pkgs), time.Since(start).Round(time.Millisecond))
	if pkg == nil {
		t.Fatal("no package")
	}

	// The check must have seen the tagged adapter, not the stub: Wrap and
	// Unwrap exist only in fdb-tagged files, and take the bindings' types.
	for _, name := range []string{"Wrap", "Unwrap", "Open", "DB", "Transact"} {
		if pkg.Scope().Lookup(name) == nil {
			t.Errorf("%s not declared: the fdb-tagged files were not checked", name)
		}
	}
	// ... and the fdb-tagged tests: they are compiled nowhere else here.
	for _, name := range []string{"openCluster", "TestConformance", "TestTxnExactlyOnceAgainstCluster"} {
		if pkg.Scope().Lookup(name) == nil {
			t.Errorf("%s not declared: the fdb-tagged tests were not checked", name)
		}
	}
	if obj := pkg.Scope().Lookup("Wrap"); obj != nil {
		param := obj.Type().(*types.Signature).Params().At(0).Type()
		if named, ok := param.(*types.Named); !ok || named.Obj().Pkg().Path() != bindingsFDB || named.Obj().Name() != "Database" {
			t.Errorf("Wrap takes %v, want %s.Database", param, bindingsFDB)
		}
	}
	if fdbPkg := imp.pkgs[bindingsFDB]; fdbPkg == nil || fdbPkg.Scope().Lookup("Transaction") == nil {
		t.Errorf("the bindings' package %s was not checked from source", bindingsFDB)
	}
}

// TestTypecheckCatchesBrokenCalls proves the check above can fail: each
// case is an otherwise valid copy of the adapter with one wrong use of the
// bindings, and the checker must report it, in the file that has it.
func TestTypecheckCatchesBrokenCalls(t *testing.T) {
	imp := importer(t)
	read := func(name string) string {
		b, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	cases := []struct {
		name, file, old, new string
		want                 string // substring of the error
	}{
		{"wrong arguments", "transaction.go", "f := rd.Get(fdb.Key(key))", "f := t.tr.Get(42, 1)", "transaction.go"},
		{"missing method", "transaction.go", "t.tr.SetReadVersion(v)", "t.tr.SetReadVersionAt(v)", "SetReadVersionAt"},
		{"wrong return type", "transaction.go", "kvs, err := rr.GetSliceWithError()", "kvs, err := rr.Iterator()", "transaction.go"},
		{"wrong option type", "transaction.go", "o.SetRetryLimit(int64(p.retryLimit))", "o.SetRetryLimit(p.retryLimit)", "transaction.go"},
		{"new file returning a future as bytes", "broken_fdb.go", "",
			"//go:build fdb\n\npackage fdbkv\n\nimport \"github.com/apple/foundationdb/bindings/go/src/fdb\"\n\nfunc brokenGet(tr fdb.Transaction) []byte { return tr.Get(fdb.Key(\"k\")) }\n",
			"broken_fdb.go"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			src := c.new
			if c.old != "" {
				orig := read(c.file)
				if !strings.Contains(orig, c.old) {
					t.Fatalf("%s no longer contains %q: update this case", c.file, c.old)
				}
				src = strings.Replace(orig, c.old, c.new, 1)
			}
			_, errs := checkAdapter(t, imp, map[string]string{c.file: src})
			if len(errs) == 0 {
				t.Fatalf("checker accepted the broken %s", c.file)
			}
			var msgs []string
			found := false
			for _, err := range errs {
				msgs = append(msgs, err.Error())
				var te types.Error
				if errors.As(err, &te) && strings.Contains(err.Error(), c.want) &&
					filepath.Base(imp.fset.Position(te.Pos).Filename) == c.file {
					found = true
				}
			}
			if !found {
				t.Fatalf("no error in %s mentioning %q; got:\n%s", c.file, c.want, strings.Join(msgs, "\n"))
			}
			t.Logf("caught: %s", msgs[0])
		})
	}
}

// TestMutationCodesMatchBindings checks kv's mutation type codes, which
// Atomic maps by name onto the bindings' methods, against the codes those
// methods pass in the bindings' generated.go.
func TestMutationCodesMatchBindings(t *testing.T) {
	imp := importer(t)
	dir, err := imp.dirOf(bindingsFDB)
	if err != nil {
		t.Fatal(err)
	}
	f, err := parser.ParseFile(token.NewFileSet(), filepath.Join(dir, "generated.go"), nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	codes := map[string]int{}
	for _, d := range f.Decls {
		fd, ok := d.(*ast.FuncDecl)
		if !ok || fd.Recv == nil || fd.Body == nil || len(fd.Body.List) != 1 {
			continue
		}
		if id, ok := fd.Recv.List[0].Type.(*ast.Ident); !ok || id.Name != "Transaction" {
			continue
		}
		es, ok := fd.Body.List[0].(*ast.ExprStmt)
		if !ok {
			continue
		}
		call, ok := es.X.(*ast.CallExpr)
		if !ok || len(call.Args) != 3 {
			continue
		}
		if sel, ok := call.Fun.(*ast.SelectorExpr); !ok || sel.Sel.Name != "atomicOp" {
			continue
		}
		lit, ok := call.Args[2].(*ast.BasicLit)
		if !ok {
			continue
		}
		n, err := strconv.Atoi(lit.Value)
		if err != nil {
			t.Fatalf("%s: code %s", fd.Name.Name, lit.Value)
		}
		codes[fd.Name.Name] = n
	}
	want := map[kv.MutationType]string{
		kv.Add: "Add", kv.BitAnd: "BitAnd", kv.BitOr: "BitOr", kv.BitXor: "BitXor",
		kv.AppendIfFits: "AppendIfFits", kv.Max: "Max", kv.Min: "Min",
		kv.SetVersionstampedKey: "SetVersionstampedKey", kv.SetVersionstampedValue: "SetVersionstampedValue",
		kv.ByteMin: "ByteMin", kv.ByteMax: "ByteMax", kv.CompareAndClear: "CompareAndClear",
	}
	for op, method := range want {
		got, ok := codes[method]
		if !ok {
			t.Errorf("bindings have no Transaction.%s atomic method", method)
		} else if got != int(op) {
			t.Errorf("Transaction.%s uses code %d, kv.%v is %d", method, got, op, int(op))
		}
	}
}

// TestMaxAPIVersionMatchesBindings checks MaxAPIVersion against the header
// version the bindings compile against (fdb.go: headerVersion := N).
func TestMaxAPIVersionMatchesBindings(t *testing.T) {
	imp := importer(t)
	dir, err := imp.dirOf(bindingsFDB)
	if err != nil {
		t.Fatal(err)
	}
	src, err := os.ReadFile(filepath.Join(dir, "fdb.go"))
	if err != nil {
		t.Fatal(err)
	}
	const marker = "headerVersion := "
	i := bytes.Index(src, []byte(marker))
	if i < 0 {
		t.Fatal("fdb.go has no headerVersion: update this test")
	}
	rest := src[i+len(marker):]
	v, err := strconv.Atoi(string(bytes.TrimSpace(rest[:bytes.IndexByte(rest, '\n')])))
	if err != nil {
		t.Fatal(err)
	}
	if v != MaxAPIVersion {
		t.Errorf("bindings' header version is %d, MaxAPIVersion is %d", v, MaxAPIVersion)
	}
}

// TestStubMatchesAdapterAPI checks that the names both builds declare —
// the stub (no tag) and the adapter (-tags fdb) — have the same types, so
// that code calling Open compiles either way, and that each build declares
// them exactly once (a redeclaration would be a type error here).
func TestStubMatchesAdapterAPI(t *testing.T) {
	stub, adapter := declareBoth(t)
	if stub.Scope().Lookup("Wrap") != nil {
		t.Error("the untagged build declares Wrap: stub.go's build constraint is wrong")
	}
	qual := func(p *types.Package) string { return p.Name() } // package names, not paths: the two builds are distinct packages
	for _, name := range []string{"Open", "Options", "ErrNoFoundationDB", "MinAPIVersion", "MaxAPIVersion", "DefaultAPIVersion", "ClusterFileEnv"} {
		s, a := stub.Scope().Lookup(name), adapter.Scope().Lookup(name)
		if s == nil || a == nil {
			t.Errorf("%s: declared in stub build %v, in fdb build %v", name, s != nil, a != nil)
			continue
		}
		if st, at := types.TypeString(s.Type(), qual), types.TypeString(a.Type(), qual); st != at {
			t.Errorf("%s: stub has %s, adapter has %s", name, st, at)
		}
	}
	for _, method := range []string{"CreateTransaction", "Close"} {
		sig := func(p *types.Package) string {
			obj, _, _ := types.LookupFieldOrMethod(types.NewPointer(p.Scope().Lookup("DB").Type()), false, p, method)
			if obj == nil {
				return "<missing>"
			}
			return types.TypeString(obj.Type(), qual)
		}
		if s, a := sig(stub), sig(adapter); s != a {
			t.Errorf("(*DB).%s: stub has %s, adapter has %s", method, s, a)
		}
	}
}

// declareBoth type-checks this package's non-test files as the untagged
// build (the stub) and as the -tags fdb build (the adapter) would compile
// them.
func declareBoth(t *testing.T) (stub, adapter *types.Package) {
	t.Helper()
	imp := importer(t)
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	declare := func(tags []string) *types.Package {
		t.Helper()
		ctx := imp.ctx
		ctx.BuildTags = tags
		bp, err := ctx.ImportDir(dir, 0)
		if err != nil {
			t.Fatalf("go/build with tags %v: %v", tags, err)
		}
		pkg, errs := imp.check(thisPackage, dir, append(append([]string{}, bp.GoFiles...), bp.CgoFiles...), nil, false)
		for _, err := range errs {
			t.Errorf("tags %v: %v", tags, err)
		}
		return pkg
	}
	return declare(nil), declare([]string{"fdb"})
}
