package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The ledger is a file or a postgres:// DSN; the DSN never holds the
// password, which a file or PGPASSWORD gives.
func TestValidateLedger(t *testing.T) {
	pw := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(pw, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, yaml string
		problem    string // "" when valid
	}{
		{"file", "ledger: /var/lib/usagedrop/ledger.db\n", ""},
		{"dsn", "ledger: postgres://usagedrop@db.internal:5432/usagedrop?sslmode=verify-full\n", ""},
		{"dsn with a password file", "ledger: postgresql://usagedrop@db/usagedrop\nledger_password_file: " + pw + "\n", ""},
		{"password in the user info", "ledger: postgres://usagedrop:s3cret@db/usagedrop\n", "must not hold the password"},
		{"password in the query", "ledger: postgres://db/usagedrop?user=u&password=s3cret\n", "must not hold the password"},
		{"password file for a file ledger", "ledger: ledger.db\nledger_password_file: " + pw + "\n", "is for a postgres:// ledger only"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse(strings.NewReader(tt.yaml + "sources:\n  - {name: a, type: local, path: x}\n"))
			if err != nil {
				t.Fatal(err)
			}
			err = c.Validate()
			switch {
			case tt.problem == "" && err != nil:
				t.Fatal(err)
			case tt.problem != "" && (err == nil || !strings.Contains(err.Error(), tt.problem)):
				t.Fatalf("err = %v, want %q", err, tt.problem)
			case err != nil && strings.Contains(err.Error(), "s3cret"):
				t.Fatalf("the problem shows the password: %v", err)
			}
			if tt.problem == "" && strings.Contains(tt.yaml, "ledger_password_file") && c.LedgerPassword.Value() != "s3cret" {
				t.Fatalf("password from the file = %q", c.LedgerPassword.Value())
			}
		})
	}
}
