package commit

// BatchScriptSource is the batch script's source, for a test that loads it in the middle of a
// pipeline as another client would.
var BatchScriptSource = bucketSource + commitSource + batchSource
