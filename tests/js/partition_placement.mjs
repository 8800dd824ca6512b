// Where Microsoft's JavaScript SDK places partition keys: its own `mapPartitionKeyToId`
// (`@azure/event-hubs`, the port of the service's resolver), run on keys read from stdin.
//
//   echo '{"keys": ["a", "é"], "partitions": [2, 4]}' | node tests/js/partition_placement.mjs
//   -> {"hashes": [..], "placements": {"2": [..], "4": [..]}}
//
// The function is internal to the package (its `exports` map hides it), so it is loaded by
// file path from the pinned install; a moved file fails loudly rather than silently.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { pathToFileURL } from "node:url";

const require = createRequire(import.meta.url);
const packageDir = dirname(require.resolve("@azure/event-hubs/package.json"));
const mapper = await import(
  pathToFileURL(join(packageDir, "dist", "esm", "impl", "partitionKeyToIdMapper.js")).href
);

const request = JSON.parse(readFileSync(0, "utf8"));
const placements = {};
for (const count of request.partitions) {
  placements[count] = request.keys.map((key) => mapper.mapPartitionKeyToId(key, count));
}
const hashes = request.keys.map((key) => mapper.hashPartitionKey(key));
process.stdout.write(JSON.stringify({ hashes, placements }));
