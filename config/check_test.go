package config

import (
	"fmt"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

// TestParseListsEveryProblem holds Parse to its promise: a config with N
// mistakes lists exactly those N, in file order, each as
// "line N: key: reason (got "value")", never in yaml.v3's words.
func TestParseListsEveryProblem(t *testing.T) {
	t.Setenv("USAGEDROP_TEST_WORKERS", "4")
	dir := t.TempDir()
	missing := filepath.Join(dir, "no-such-secret")
	tests := []struct {
		name string
		yaml string
		want []string
	}{
		{
			name: "four mistakes of four kinds",
			yaml: `ledger: /var/lib/usagedrop/ledger.db
workers: two
zuora:
  endpoint: us-sandbox
  client_id: abc
  client_secret: def
  date_format: YYYY/MM/DD
sources:
  - name: finance
    type: local
    path: /srv/usage
    setle: 2s
    interval: every minute
`,
			want: []string{
				`line 2: workers: must be a number (got "two")`,
				`line 7: zuora.date_format: must be MM/DD/YYYY (en_US API user) or DD/MM/YYYY (en_GB, en_AU) (got "YYYY/MM/DD")`,
				`line 12: sources[0].setle: unknown key (did you mean "settle"?)`,
				`line 13: sources[0].interval: must be a duration like 2s or 5m (got "every minute")`,
			},
		},
		{
			name: "wrong shapes",
			yaml: `sources: /srv/usage
zuora: us-sandbox
limits:
  max_columns: [1, 2]
http_auth:
  user:
    name: ops
`,
			want: []string{
				`line 1: sources: must be a list, each entry starting with "- " on its own line`,
				`line 2: zuora: must hold keys, each on its own line indented below it`,
				`line 4: limits.max_columns: must be a number, not a list`,
				`line 7: http_auth.user: must be a single value, not keys below it`,
			},
		},
		{
			name: "quoted numbers, yes for a bool, a list of one",
			yaml: `workers: "4"
sources:
  - name: b
    type: s3
    bucket: drops
    path_style: maybe
zuora:
  columns: ACCOUNT_ID
`,
			want: []string{
				`line 1: workers: must be a number, written without quotes (got "4")`,
				`line 6: sources[0].path_style: must be true or false (got "maybe")`,
				`line 8: zuora.columns: must be a list, like [A, B] or one "- item" per line (got`,
			},
		},
		{
			name: "keys at the wrong level",
			yaml: `settle: 2s
sources:
  - name: a
    type: local
    path: x
    client_id: abc
    ledger: x.db
`,
			want: []string{
				`line 1: settle: unknown key here; settle belongs under sources[N]`,
				`line 6: sources[0].client_id: unknown key here; client_id belongs under zuora`,
				`line 7: sources[0].ledger: unknown key here; ledger is a key of the top level, not indented`,
			},
		},
		{
			name: "did you mean, for case, dashes and slips",
			yaml: `Ledger: x.db
zuora:
  client-secret: abc
  endpont: builtin
sources:
  - {name: a, type: local, path: x, date_fromat: DD/MM/YYYY}
`,
			want: []string{
				`line 1: Ledger: unknown key (did you mean "ledger"?)`,
				`line 3: zuora.client-secret: unknown key (did you mean "client_secret"?)`,
				`line 4: zuora.endpont: unknown key (did you mean "endpoint"?)`,
				`line 6: sources[0].date_fromat: unknown key (did you mean "date_format"?)`,
			},
		},
		{
			name: "a key set twice",
			yaml: "workers: 2\nsources:\n  - {name: a, type: local, path: x}\nworkers: 3\n",
			want: []string{`line 4: workers: is set twice (first on line 1); keep one`},
		},
		{
			name: "a key nobody knows",
			yaml: "sources:\n  - {name: a, type: local, path: x, colour: blue}\n",
			want: []string{`line 2: sources[0].colour: unknown key; the keys here are access_key_id, address,`},
		},
		{
			name: "unset variables, each where it is used",
			yaml: "zuora:\n  endpoint: us-sandbox\n  client_id: ${USAGEDROP_TEST_UNSET_ID}\n  client_secret: ${USAGEDROP_TEST_UNSET_SECRET}\nsources:\n  - {name: a, type: local, path: x}\n",
			want: []string{
				`line 3: zuora.client_id: environment variable USAGEDROP_TEST_UNSET_ID is not set (got "${USAGEDROP_TEST_UNSET_ID}")`,
				`line 4: zuora.client_secret: environment variable USAGEDROP_TEST_UNSET_SECRET is not set (got "${USAGEDROP_TEST_UNSET_SECRET}")`,
			},
		},
		{
			name: "unreadable secret file beside a validation problem",
			yaml: "zuora:\n  client_secret_file: " + missing + "\nsources:\n  - {name: a, type: ftp, path: x}\n",
			want: []string{
				`line 2: zuora.client_secret_file: cannot be read: no such file or directory (got "` + missing + `")`,
				`line 4: sources[0].type: must be local, s3 or sftp (got "ftp")`,
			},
		},
		{
			name: "syntax: a tab",
			yaml: "zuora:\n\tendpoint: builtin\n",
			want: []string{`line 2: the file is not valid YAML: found character that cannot start any token (is a tab indenting the line? YAML indents with spaces only)`},
		},
		{
			name: "syntax: a colon in a value, line found though yaml.v3 does not say it",
			yaml: "ledger: x.db\nspool: /var/spool\nhttp: a: b\n",
			want: []string{`line 3: the file is not valid YAML: mapping values are not allowed in this context`},
		},
		{
			name: "syntax: an unclosed list",
			yaml: "zuora:\n  columns: [ACCOUNT_ID, UOM\nsources: []\n",
			want: []string{`line 2: the file is not valid YAML: did not find expected ',' or ']'`},
		},
		{
			name: "the file is a list",
			yaml: "- ledger: x\n",
			want: []string{`line 1: the file must be made of keys, such as ledger: and sources:, each on its own line`},
		},
		{
			name: "a secret's value is never quoted",
			yaml: "zuora:\n  endpoint: us-sandbox\n  client_id: a\n  client_secret: [hunter2]\nsources:\n  - {name: a, type: local, path: x, password: {x: hunter2}}\n",
			want: []string{
				`line 4: zuora.client_secret: must be a single value, not a list`,
				`line 6: sources[0].password: must be a single value, not keys below it`,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse(strings.NewReader(tt.yaml))
			if err == nil {
				t.Fatalf("no error; config %+v", c)
			}
			var got []string
			if ve, ok := err.(*ValidationError); ok {
				got = ve.Problems
			} else {
				t.Fatalf("err is %T, not *ValidationError: %v", err, err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %d problems, want %d:\n  %s", len(got), len(tt.want), strings.Join(got, "\n  "))
			}
			for i := range got {
				if !strings.HasPrefix(got[i], tt.want[i]) {
					t.Errorf("problem %d:\n got %s\nwant %s", i, got[i], tt.want[i])
				}
				for _, words := range []string{"unmarshal", "!!", "yaml:", "hunter2", "field "} {
					if strings.Contains(got[i], words) {
						t.Errorf("problem %d says %q: %s", i, words, got[i])
					}
				}
			}
		})
	}
}

// TestParseAcceptsWhatItShould: the checks must not refuse what the
// decoder takes, nor what a variable turns into a number.
func TestParseAcceptsWhatItShould(t *testing.T) {
	t.Setenv("USAGEDROP_TEST_WORKERS", "4")
	t.Setenv("USAGEDROP_TEST_SETTLE", "5s")
	tests := []struct{ name, yaml string }{
		{"a variable as a number", "workers: ${USAGEDROP_TEST_WORKERS}\n"},
		{"a variable as a duration", "sources:\n  - {name: a, type: local, path: x, settle: \"${USAGEDROP_TEST_SETTLE}\"}\n"},
		{"empty values keep defaults", "zuora:\nlimits:\nworkers:\n"},
		{"an alias", "sources:\n  - {name: a, type: &t local, path: x}\n  - {name: b, type: *t, path: y}\n"},
		{"flow mappings and lists", "zuora: {api: file, columns: [ACCOUNT_ID, UOM, QTY, STARTDATE, ENDDATE, SUBSCRIPTION_ID, CHARGE_ID]}\n"},
		{"empty file", ""},
		{"comments only", "# nothing\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			y := tt.yaml
			if !strings.Contains(y, "sources:") {
				y += "sources:\n  - {name: a, type: local, path: x}\n"
			}
			c, err := Parse(strings.NewReader(y))
			if err != nil {
				t.Fatal(err)
			}
			if err := c.Validate(); err != nil {
				t.Fatal(err)
			}
		})
	}
	t.Setenv("USAGEDROP_TEST_NULL", "null")
	c, err := Parse(strings.NewReader("zuora:\n  client_secret: ${USAGEDROP_TEST_NULL}\nsources:\n  - name: a\n    password: ${USAGEDROP_TEST_NULL}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Zuora.ClientSecret.Value() != "null" || c.Sources[0].Password.Value() != "null" {
		t.Fatalf("a variable holding null is read as %q, %q", c.Zuora.ClientSecret.Value(), c.Sources[0].Password.Value())
	}
	c, err = Parse(strings.NewReader("workers: ${USAGEDROP_TEST_WORKERS}\nsources:\n  - {name: a, type: local, path: x, settle: \"${USAGEDROP_TEST_SETTLE}\"}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Workers != 4 || time.Duration(c.Sources[0].Settle) != 5*time.Second {
		t.Fatalf("workers %d settle %v", c.Workers, time.Duration(c.Sources[0].Settle))
	}
}

func TestClosest(t *testing.T) {
	names := []string{"settle", "interval", "lease", "name", "type", "path", "password", "password_file"}
	tests := []struct{ key, want string }{
		{"setle", "settle"},
		{"Settle", "settle"},
		{"intervall", "interval"},
		{"passwrd", "password"},
		{"password-file", "password_file"},
		{"pth", "path"},
		{"colour", ""},
		{"nm", ""},
		{"leases", "lease"},
	}
	for _, tt := range tests {
		if got := closest(tt.key, names); got != tt.want {
			t.Errorf("closest(%q) = %q, want %q", tt.key, got, tt.want)
		}
	}
	if !slices.Contains(names, closest("type", names)) {
		t.Error("an exact key is not its own match")
	}
}

// level reads itself, as a key others add to Config might.
type level string

func (l *level) UnmarshalYAML(n *yaml.Node) error {
	if n.Value != "info" && n.Value != "debug" {
		return fmt.Errorf("must be info or debug")
	}
	*l = level(n.Value)
	return nil
}

// TestShapeOfOtherTypes holds the shape check to the kinds of fields
// others may add to Config: pointers, time.Duration, types that read
// themselves, maps of structs, any.
func TestShapeOfOtherTypes(t *testing.T) {
	type hook struct {
		URL     string            `yaml:"url"`
		Headers map[string]string `yaml:"headers"`
	}
	type extra struct {
		Enabled *bool           `yaml:"enabled"`
		Wait    time.Duration   `yaml:"wait"`
		Level   level           `yaml:"level"`
		Hooks   map[string]hook `yaml:"hooks"`
		Free    any             `yaml:"free"`
	}
	good := "enabled: true\nwait: 5m\nlevel: debug\nhooks:\n  ops: {url: x, headers: {A: b}}\nfree: [1, {a: b}]\n"
	bad := "enabled: maybe\nwait: soon\nlevel: loud\nhooks:\n  ops: {url: x, hedaers: {A: b}}\n"
	want := []string{
		`line 1: enabled: must be true or false (got "maybe")`,
		`line 2: wait: must be a duration like 2s or 5m (got "soon")`,
		`line 3: level: must be info or debug (got "loud")`,
		`line 5: hooks.ops.hedaers: unknown key (did you mean "headers"?)`,
	}
	for _, tt := range []struct {
		yaml string
		want []string
	}{{good, nil}, {bad, want}} {
		var root yaml.Node
		if err := yaml.Unmarshal([]byte(tt.yaml), &root); err != nil {
			t.Fatal(err)
		}
		ps := checkShapeOf(&root, reflect.TypeFor[extra](), map[string]bool{})
		var got []string
		for _, p := range ps {
			got = append(got, p.String())
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("got\n  %s\nwant\n  %s", strings.Join(got, "\n  "), strings.Join(tt.want, "\n  "))
		}
		var e extra
		if err := root.Decode(&e); err != nil {
			t.Errorf("what is left does not decode: %v", err)
		}
	}
}

// TestShapeAliasBomb: aliases of aliases (a billion laughs) are checked
// once each, not expanded, whatever depth the types that others add to
// Config allow.
func TestShapeAliasBomb(t *testing.T) {
	type deep struct {
		L [][][][][][][][][][]int `yaml:"l"`
	}
	var b strings.Builder
	b.WriteString("x0: &l0 [1, 2, x]\n")
	for i := 1; i <= 9; i++ {
		fmt.Fprintf(&b, "x%d: &l%d [", i, i)
		for j := range 10 {
			if j > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "*l%d", i-1)
		}
		b.WriteString("]\n")
	}
	b.WriteString("l: [*l9]\n")
	var root yaml.Node
	if err := yaml.Unmarshal([]byte(b.String()), &root); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	ps := checkShapeOf(&root, reflect.TypeFor[deep](), map[string]bool{})
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("the check took %s", took)
	}
	// x0 ... x9 are unknown; the list under l is checked once.
	if len(ps) != 11 || !strings.HasPrefix(ps[10].String(), "line 1: l[0][0]") {
		for _, p := range ps {
			t.Log(p)
		}
		t.Fatalf("%d problems", len(ps))
	}
}
