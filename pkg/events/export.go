package events

import (
	"context"

	"google.golang.org/grpc/metadata"
)

// ExportFormatKey is the metadata the gateway's export route names the format it writes the
// records in ("ndjson", "csv"), for the export's audit event (eventv1.Exported.format).
const ExportFormatKey = "x-export-format"

// ExportFormat is the format an export's records are sent as: the gateway's (the last value, the
// one it set after any of the client's headers), "grpc" for a client of the RPC itself.
func ExportFormat(ctx context.Context) string {
	if v := metadata.ValueFromIncomingContext(ctx, ExportFormatKey); len(v) > 0 {
		switch f := v[len(v)-1]; f {
		case "ndjson", "csv":
			return f
		}
	}
	return "grpc"
}
