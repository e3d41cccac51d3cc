// Command kstatus prints the verdict of sigs.k8s.io/cli-utils' kstatus (what Flux's kustomize-controller waits
// on) for each object it reads: a JSON list of objects on stdin, one JSON result per object on stdout
// ({"status": "Current" | "InProgress" | "Failed" | "Terminating" | "NotFound" | "Unknown", "message": ...}).
// The tests feed it Wukongs read from devcluster, so the verdict is the library's own, not a port of it.
package main

import (
	"encoding/json"
	"fmt"
	"os"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
)

type verdict struct {
	Status  string `json:"status"`
	Message string `json:"message"`
}

func main() {
	var objects []json.RawMessage
	if err := json.NewDecoder(os.Stdin).Decode(&objects); err != nil {
		fmt.Fprintln(os.Stderr, "kstatus: reading a JSON list of objects from stdin:", err)
		os.Exit(2)
	}
	verdicts := make([]verdict, 0, len(objects))
	for _, object := range objects {
		// the apimachinery decoder, which keeps integers int64 as kstatus' NestedInt64 reads them
		var u unstructured.Unstructured
		if err := u.UnmarshalJSON(object); err != nil {
			fmt.Fprintln(os.Stderr, "kstatus: decoding an object:", err)
			os.Exit(2)
		}
		result, err := status.Compute(&u)
		if err != nil {
			fmt.Fprintln(os.Stderr, "kstatus:", err)
			os.Exit(1)
		}
		verdicts = append(verdicts, verdict{Status: result.Status.String(), Message: result.Message})
	}
	if err := json.NewEncoder(os.Stdout).Encode(verdicts); err != nil {
		fmt.Fprintln(os.Stderr, "kstatus:", err)
		os.Exit(1)
	}
}
