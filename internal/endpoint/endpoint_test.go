package endpoint

import (
	"strings"
	"testing"
)

func TestLoopback(t *testing.T) {
	tests := []struct {
		host string
		want bool
	}{
		{"localhost", true},
		{"LOCALHOST.", true},
		{"127.0.0.1", true},
		{"127.5.6.7", true},
		{"::1", true},
		{"[::1]", true},
		{"0.0.0.0", false},
		{"::", false},
		{"10.0.0.1", false},
		{"localhost.evil.example", false},
		{"rest.zuora.com", false},
		{"", false},
	}
	for _, tt := range tests {
		if got := Loopback(tt.host); got != tt.want {
			t.Errorf("Loopback(%q) = %v, want %v", tt.host, got, tt.want)
		}
	}
}

func TestListenLoopback(t *testing.T) {
	tests := []struct {
		addr string
		want bool
	}{
		{"127.0.0.1:8321", true},
		{"[::1]:8321", true},
		{"localhost:8321", true},
		{":8321", false},
		{"0.0.0.0:8321", false},
		{"[::]:8321", false},
		{"192.168.1.5:8321", false},
		{"no-port", false},
	}
	for _, tt := range tests {
		if got := ListenLoopback(tt.addr); got != tt.want {
			t.Errorf("ListenLoopback(%q) = %v, want %v", tt.addr, got, tt.want)
		}
	}
}

func TestSecure(t *testing.T) {
	tests := []struct {
		url, err string
	}{
		{"https://rest.zuora.com", ""},
		{"https://10.1.2.3:8443/x", ""},
		{"http://127.0.0.1:8320", ""},
		{"http://localhost:8320", ""},
		{"http://[::1]:8320", ""},
		{"http://rest.zuora.com", "plain http to another machine"},
		{"http://10.0.0.7:8320", "plain http to another machine"},
		{"ftp://rest.zuora.com", "not an https URL"},
		{"rest.zuora.com", "has no host"},
		{"https://", "has no host"},
		{"://x", "not a URL"},
	}
	for _, tt := range tests {
		_, err := Secure(tt.url)
		if tt.err == "" && err != nil || tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)) {
			t.Errorf("Secure(%q) = %v, want %q", tt.url, err, tt.err)
		}
	}
}

func TestSameSite(t *testing.T) {
	tests := []struct {
		base, other, err string
	}{
		{"https://apisandbox.zuora.com/apps/services/a/119.0", "https://apisandbox.zuora.com/apps/services/a/119.0", ""},
		{"https://apisandbox.zuora.com/apps/services/a/119.0", "https://services470.zuora.com/apps/services/a/119.0", ""},
		{"https://www.zuora.com/apps/services/a/119.0", "https://zuora.com/apps/services/a/119.0", ""},
		{"https://apisandbox.zuora.com/apps", "https://zuora.com.evil.example/apps", "is not on zuora.com"},
		{"https://apisandbox.zuora.com/apps", "https://evilzuora.com/apps", "is not on zuora.com"},
		{"https://apisandbox.zuora.com/apps", "http://services1.zuora.com/apps", "plain http"},
		{"http://127.0.0.1:8320/apps", "http://127.0.0.1:8320/apps/services/a/119.0", ""},
		{"http://127.0.0.1:8320/apps", "http://127.0.0.1:9999/apps", "is not on 127.0.0.1:8320"},
		{"http://127.0.0.1:8320/apps", "http://localhost:8320/apps", "is not on 127.0.0.1:8320"},
		{"https://10.0.0.5/apps", "https://10.0.0.6/apps", "is not on 10.0.0.5"},
		// A bare public suffix is its own site only.
		{"https://zuora.co.uk/apps", "https://other.co.uk/apps", "is not on zuora.co.uk"},
	}
	for _, tt := range tests {
		err := SameSite(tt.base, tt.other)
		if tt.err == "" && err != nil || tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)) {
			t.Errorf("SameSite(%q, %q) = %v, want %q", tt.base, tt.other, err, tt.err)
		}
	}
}
