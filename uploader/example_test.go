package uploader_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"time"

	"usagedrop/uploader"
	"usagedrop/zuorasim"
)

// A part goes to Zuora's file import and is polled until Zuora is done
// with it. Here Zuora is the simulator on a loopback port.
func ExampleFileImport() {
	srv := httptest.NewServer(zuorasim.New(zuorasim.Options{ProcessingDelay: 10 * time.Millisecond}))
	defer srv.Close()
	dir, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "march.csv")
	_ = os.WriteFile(path, []byte("ACCOUNT_ID,UOM,QTY,STARTDATE,ENDDATE,SUBSCRIPTION_ID,CHARGE_ID\r\nA00000001,GB,12.5,03/01/2026,,,\r\n"), 0o600)

	c := uploader.NewClient(uploader.Config{BaseURL: srv.URL, ClientID: "id", ClientSecret: "secret"})
	fi := uploader.NewFileImport(c)
	ctx := context.Background()
	r, err := fi.Submit(ctx, uploader.Part{Name: "march.csv", Path: path}, "sha256-of-the-drop:0")
	if err != nil {
		fmt.Println("submit:", err, "retry later:", uploader.IsRetryable(err))
		return
	}
	for {
		st, err := fi.Status(ctx, r)
		if err != nil {
			fmt.Println("status:", err)
			return
		}
		if st.State.Final() {
			fmt.Println(st.State, st.Imported, "of", st.Total)
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	// Output: Completed 1 of 1
}
