// Drives the marketing API through a TypeScript client: openapi-typescript turned /openapi.json
// into schema.d.ts (written by the test next to this file, never committed) and openapi-fetch
// calls it, with no hand edits. tsc checks the types first, so a document whose types do not fit
// the flow fails the test. One line per step; exit 1 at the first step that fails.
import createClient from "openapi-fetch";
import type { paths, components } from "./schema.js";

declare const process: { argv: string[]; exit(code: number): never };

type ApiError = components["schemas"]["Error"];

const [url, key, limitedUrl, limitedKey] = process.argv.slice(2);
const auth = (k: string) => ({ Authorization: `Bearer ${k}` });

function check(ok: boolean, step: string, detail: unknown): void {
  if (!ok) {
    console.log(`FAIL: ${step}: ${JSON.stringify(detail)}`);
    process.exit(1);
  }
}

function violates(e: ApiError | undefined, field: string): boolean {
  return (e?.error.details ?? []).some((d) => (d.fieldViolations ?? []).some((v) => v.field === field));
}

async function main(): Promise<void> {
  const api = createClient<paths>({ baseUrl: url, headers: auth(key) });

  // Capture, then the same capture with the same Idempotency-Key: replayed.
  const body = { email: "ada@ts.example", givenName: "Ada", tags: ["tsflow"] };
  const params = { header: { "Idempotency-Key": "ts-client-capture-1" } };
  const first = await api.POST("/v1/leads", { params, body });
  const again = await api.POST("/v1/leads", { params, body });
  check(first.data?.id !== undefined && again.data?.id === first.data?.id, "capture and idempotent retry", [first.error, again.error]);
  console.log("ok capture and idempotent retry");
  const id = first.data!.id!;

  const got = await api.GET("/v1/leads/{id}", { params: { path: { id } } });
  const etag = got.response.headers.get("ETag");
  check(got.data?.email === "ada@ts.example" && etag !== null, "get with ETag", got.error);
  console.log(`ok get with ETag ${etag}`);

  for (const email of ["grace@ts.example", "hedy@ts.example", "other@ts.example"]) {
    const tags = email.startsWith("other") ? [] : ["tsflow"];
    const r = await api.POST("/v1/leads", { body: { email, tags } });
    check(r.data !== undefined, `capture ${email}`, r.error);
  }
  const listed: string[] = [];
  let pageToken: string | undefined;
  for (const page of [1, 2]) {
    const r = await api.GET("/v1/leads", { params: { query: { filter: 'tags:"tsflow"', pageSize: 2, pageToken } } });
    check(r.data !== undefined, `list page ${page}`, r.error);
    listed.push(...(r.data!.leads ?? []).map((l) => l.email));
    pageToken = r.data!.nextPageToken;
    check((page === 1) === Boolean(pageToken), `page ${page} token`, pageToken);
  }
  listed.sort();
  check(JSON.stringify(listed) === JSON.stringify(["ada@ts.example", "grace@ts.example", "hedy@ts.example"]), "filtered list over two pages", listed);
  console.log("ok filtered list, two pages");

  const patch = {
    params: { path: { id }, query: { updateMask: "company" }, header: { "If-Match": etag! } },
    body: { company: "Analytical Engines" },
  };
  const upd = await api.PATCH("/v1/leads/{id}", patch);
  check(upd.data?.company === "Analytical Engines" && upd.data?.givenName === "Ada", "patch with updateMask and If-Match", upd.error);
  const stale = await api.PATCH("/v1/leads/{id}", patch);
  check(stale.response.status === 412 && stale.error?.error.code === 412, "patch with a stale If-Match", stale.error);
  console.log("ok patch with updateMask and If-Match, 412 when stale");

  const invalid = await api.POST("/v1/leads", { body: { email: "long@ts.example", givenName: "x".repeat(101) } });
  check(invalid.response.status === 400 && invalid.error?.error.status === "INVALID_ARGUMENT" && violates(invalid.error, "lead.givenName"), "typed 400", invalid.error);
  const missing = await api.GET("/v1/leads/{id}", { params: { path: { id: "0192f3a0-0000-7000-8000-0000000000ff" } } });
  check(missing.response.status === 404 && missing.error?.error.status === "NOT_FOUND", "typed 404", missing.error);
  console.log("ok typed 400 and 404");

  // Import a CSV: the body is the file as is (not JSON), so the flow passes it through. One row is
  // written, one fails on its e-mail; then the operation is read back by its name.
  const csv = "E-mail,givenName,tags\nimp@ts.example,Imp,tsimport\nnot-an-email,Bad,tsimport\n";
  const imp = await api.POST("/v1/leads:import", {
    params: { query: { columnMapping: ["E-mail=email"] } },
    body: csv,
    headers: { "Content-Type": "text/csv" },
    bodySerializer: (b) => b,
  });
  const result = imp.data?.response;
  check(imp.data?.done === true && result?.state === "IMPORT_STATE_SUCCEEDED" && result.created === "1" && result.failed === "1" &&
    result.errors?.[0]?.line === "3" && result.errors?.[0]?.reason === "INVALID_EMAIL", "import a CSV", [imp.error, imp.data]);
  const name = imp.data!.name.replace(/^operations\//, "");
  const op = await api.GET("/v1/operations/{name}", { params: { path: { name } } });
  check(op.data?.name === imp.data!.name && op.data?.done === true && op.data?.response?.created === "1", "read the operation", [op.error, op.data]);
  const ops = await api.GET("/v1/operations", { params: { query: { pageSize: 10 } } });
  check((ops.data?.operations ?? []).some((o) => o.name === imp.data!.name), "list the operations", [ops.error, ops.data]);
  const bad = await api.POST("/v1/leads:import", { body: csv, headers: { "Content-Type": "application/json" }, bodySerializer: (b) => b });
  check(bad.response.status === 415 && violates(bad.error, "Content-Type"), "import refused: 415", bad.error);
  console.log("ok import a CSV and read its operation");

  const limited = createClient<paths>({ baseUrl: limitedUrl, headers: auth(limitedKey) });
  for (let i = 0; i < 20; i++) {
    const r = await limited.GET("/v1/leads");
    if (r.response.status === 429) {
      check(r.error?.error.status === "RESOURCE_EXHAUSTED" && r.response.headers.get("Retry-After") !== null, "429", r.error);
      console.log("ok 429 with Retry-After");
      return;
    }
  }
  check(false, "429", "no 429 in 20 rapid calls");
}

main().catch((e) => check(false, "flow", String(e)));
