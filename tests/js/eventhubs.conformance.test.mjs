// Event Hubs as Microsoft's JavaScript SDK sees it: a conformance suite for our emulator that
// runs unchanged against a real namespace (devstack/eventhubs/README.md says how).
//
//   EVENTHUB_CONNECTION_STRING  namespace connection string (no EntityPath), SAS key based
//   EVENTHUB_NAME               a hub with at least 2 partitions that nothing else reads
//   STORAGE_CONNECTION_STRING   Blob storage for the checkpoint store (Azurite or an account)
//   EVENTHUB_CONSUMER_GROUP     optional, default $Default: the group the tests consume with
//
//   node --test tests/js/eventhubs.conformance.test.mjs
//
// Every test works on a hub that already holds events: positions are taken from the partition
// properties first, and only what a test sent itself is asserted on.
import assert from "node:assert/strict";
import { createHmac, randomUUID } from "node:crypto";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { after, before, describe, it } from "node:test";
import { pathToFileURL } from "node:url";

import {
  EventHubBufferedProducerClient,
  EventHubConsumerClient,
  EventHubProducerClient,
  earliestEventPosition,
  latestEventPosition,
} from "@azure/event-hubs";
import { BlobCheckpointStore } from "@azure/eventhubs-checkpointstore-blob";
import { ContainerClient } from "@azure/storage-blob";

const env = (name, fallback) => {
  const value = process.env[name] ?? fallback;
  if (value === undefined || value === "") {
    throw new Error(`set ${name} (see the header of ${import.meta.url})`);
  }
  return value;
};
const CONNECTION = env("EVENTHUB_CONNECTION_STRING");
const HUB = env("EVENTHUB_NAME");
const STORAGE = env("STORAGE_CONNECTION_STRING");
const GROUP = env("EVENTHUB_CONSUMER_GROUP", "$Default");
const NO_RETRY = { retryOptions: { maxRetries: 0, timeoutInMs: 20_000 } };
const TEST_TIMEOUT = 60_000;

// The SDK's own port of the service's resolver (internal to the package, loaded by path).
const require = createRequire(import.meta.url);
const sdkDir = dirname(require.resolve("@azure/event-hubs/package.json"));
const { mapPartitionKeyToId } = await import(
  pathToFileURL(join(sdkDir, "dist", "esm", "impl", "partitionKeyToIdMapper.js")).href
);

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Replace (or add) one `Key=Value` field of a connection string. */
function withField(connectionString, key, value) {
  const fields = connectionString.split(";").filter((part) => part.trim() !== "");
  const kept = fields.filter((part) => part.split("=")[0].toLowerCase() !== key.toLowerCase());
  return [...kept, `${key}=${value}`].join(";") + ";";
}

/** The connection string with a shared access signature in place of the key. */
function withToken(token) {
  const kept = CONNECTION.split(";").filter(
    (part) => part.trim() !== "" && !/^SharedAccessKey(Name)?=/i.test(part.trim()),
  );
  return [...kept, `SharedAccessSignature=${token}`].join(";") + ";";
}

function field(connectionString, key) {
  const found = connectionString
    .split(";")
    .find((part) => part.split("=")[0].toLowerCase() === key.toLowerCase());
  return found === undefined ? undefined : found.slice(found.indexOf("=") + 1);
}

/** A shared access signature for `resource`, signed as the service checks it. */
function sharedAccessSignature(resource, keyName, key, expirySeconds) {
  const encoded = encodeURIComponent(resource);
  const signature = createHmac("sha256", key).update(`${encoded}\n${expirySeconds}`).digest("base64");
  return (
    `SharedAccessSignature sr=${encoded}&sig=${encodeURIComponent(signature)}` +
    `&se=${expirySeconds}&skn=${encodeURIComponent(keyName)}`
  );
}

/** Receive from one partition until `done(events)` or the timeout; returns events or the error. */
async function receive(consumer, partitionId, startPosition, done, timeoutMs = 15_000) {
  const events = [];
  let subscription;
  const outcome = await new Promise((resolve) => {
    const timer = setTimeout(() => resolve({ timedOut: true }), timeoutMs);
    subscription = consumer.subscribe(
      partitionId,
      {
        processEvents: async (batch) => {
          events.push(...batch);
          if (done(events)) {
            clearTimeout(timer);
            resolve({});
          }
        },
        processError: async (error) => {
          clearTimeout(timer);
          resolve({ error });
        },
      },
      { startPosition, maxBatchSize: 100, maxWaitTimeInSeconds: 1 },
    );
  });
  await subscription.close();
  return { events, ...outcome };
}

async function receiveError(consumer, partitionId, options = {}) {
  let subscription;
  const error = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("no error within 20 s")), 20_000);
    subscription = consumer.subscribe(
      partitionId,
      {
        processEvents: async () => {},
        processError: async (err) => {
          clearTimeout(timer);
          resolve(err);
        },
      },
      { maxWaitTimeInSeconds: 1, ...options },
    );
  });
  await subscription.close();
  return error;
}

/** Every event each partition got after `start` (sequence numbers per partition), up to now. */
async function receiveSince(client, start) {
  const end = await lastSequences(client, Object.keys(start));
  const byPartition = {};
  for (const [id, from] of Object.entries(start)) {
    byPartition[id] = [];
    if (end[id] === from) continue;
    const { events, error, timedOut } = await receive(
      client,
      id,
      { sequenceNumber: from },
      (got) => got.length > 0 && got.at(-1).sequenceNumber >= end[id],
    );
    assert.equal(error, undefined, String(error));
    assert.equal(timedOut, undefined, `partition ${id}: ${events.length} events, up to ${end[id]} expected`);
    byPartition[id] = events;
  }
  return byPartition;
}

async function lastSequences(client, partitionIds) {
  const result = {};
  for (const id of partitionIds) {
    result[id] = (await client.getPartitionProperties(id)).lastEnqueuedSequenceNumber;
  }
  return result;
}

let producer;
let consumer;
let partitionIds;

before(async () => {
  producer = new EventHubProducerClient(CONNECTION, HUB);
  consumer = new EventHubConsumerClient(GROUP, CONNECTION, HUB);
  partitionIds = await producer.getPartitionIds();
  assert.ok(partitionIds.length >= 2, `${HUB} needs at least 2 partitions`);
});

after(async () => {
  await producer?.close();
  await consumer?.close();
});

describe("properties", { timeout: TEST_TIMEOUT }, () => {
  it("of the hub", async () => {
    const hub = await producer.getEventHubProperties();
    assert.equal(hub.name, HUB);
    assert.deepEqual(
      hub.partitionIds,
      partitionIds.map((_, index) => String(index)),
    );
    assert.ok(hub.createdOn instanceof Date && hub.createdOn.getTime() < Date.now());
    assert.deepEqual(await consumer.getPartitionIds(), partitionIds);
  });

  it("of a partition, before and after a send", async () => {
    const before = await consumer.getPartitionProperties("1");
    assert.equal(before.eventHubName, HUB);
    assert.equal(before.partitionId, "1");
    assert.equal(typeof before.lastEnqueuedOffset, "string");
    assert.ok(before.lastEnqueuedOnUtc instanceof Date);
    assert.ok(before.beginningSequenceNumber <= before.lastEnqueuedSequenceNumber + 1);
    await producer.sendBatch([{ body: "one" }, { body: "two" }], { partitionId: "1" });
    const afterSend = await producer.getPartitionProperties("1");
    assert.equal(afterSend.lastEnqueuedSequenceNumber, before.lastEnqueuedSequenceNumber + 2);
    assert.equal(afterSend.isEmpty, false);
    assert.ok(Number(afterSend.lastEnqueuedOffset) > Number(before.lastEnqueuedOffset));
    assert.ok(afterSend.lastEnqueuedOnUtc.getTime() >= before.lastEnqueuedOnUtc.getTime());
  });
});

describe("sending", { timeout: TEST_TIMEOUT }, () => {
  it("by partition key lands where the SDK's resolver (the service's) places the key", async () => {
    const keys = [
      ...Array.from({ length: 16 }, () => randomUUID()),
      "conversation-1",
      "conversation-2",
      "é",
      "中文字",
      "😀🎧",
      "a/b#c?d",
      "x".repeat(128),
    ];
    const start = await lastSequences(producer, partitionIds);
    for (const key of keys) {
      await producer.sendBatch([{ body: `by-service:${key}` }], { partitionKey: key });
    }
    // The buffered producer places keys itself, client-side, and sends to that partition.
    const buffered = new EventHubBufferedProducerClient(CONNECTION, HUB, {
      onSendEventsErrorHandler: (context) => {
        throw context.error;
      },
      maxWaitTimeInMs: 200,
    });
    for (const key of keys) {
      await buffered.enqueueEvent({ body: `by-client:${key}` }, { partitionKey: key });
    }
    await buffered.flush();
    await buffered.close();

    const landed = new Map();
    for (const [id, events] of Object.entries(await receiveSince(consumer, start))) {
      for (const event of events) {
        landed.set(event.body, id);
      }
    }
    for (const key of keys) {
      const expected = String(mapPartitionKeyToId(key, partitionIds.length));
      assert.equal(landed.get(`by-service:${key}`), expected, `service placed ${key}`);
      assert.equal(landed.get(`by-client:${key}`), expected, `client placed ${key}`);
    }
  });

  it("by partition id, and with neither: every event arrives once", async () => {
    const start = await lastSequences(producer, partitionIds);
    const tag = randomUUID();
    for (const id of partitionIds) {
      await producer.sendBatch([{ body: `${tag}:to-${id}` }], { partitionId: id });
    }
    for (let i = 0; i < 2 * partitionIds.length; i++) {
      await producer.sendBatch([{ body: `${tag}:anywhere-${i}` }]);
    }
    const seen = [];
    for (const [id, events] of Object.entries(await receiveSince(consumer, start))) {
      for (const event of events) {
        if (String(event.body).startsWith(tag)) seen.push([id, event.body]);
      }
    }
    for (const id of partitionIds) {
      assert.deepEqual(
        seen.filter(([, body]) => body === `${tag}:to-${id}`),
        [[id, `${tag}:to-${id}`]],
      );
    }
    const anywhere = seen.filter(([, body]) => body.includes(":anywhere-")).map(([, body]) => body);
    assert.deepEqual(
      anywhere.sort(),
      Array.from({ length: 2 * partitionIds.length }, (_, i) => `${tag}:anywhere-${i}`).sort(),
    );
  });

  it("respects the 1 MiB batch limit", async () => {
    const batch = await producer.createBatch({ partitionId: "0" });
    assert.equal(batch.maxSizeInBytes, 1024 * 1024);
    assert.equal(batch.tryAdd({ body: Buffer.alloc(1024 * 1024) }), false);
    const largest = Buffer.alloc(1_000_000, 7);
    assert.equal(batch.tryAdd({ body: largest }), true);
    assert.equal(batch.tryAdd({ body: Buffer.alloc(100_000) }), false);
    const start = (await producer.getPartitionProperties("0")).lastEnqueuedSequenceNumber;
    await producer.sendBatch(batch);
    const { events } = await receive(consumer, "0", { sequenceNumber: start }, (got) => got.length >= 1);
    assert.ok(Buffer.from(events[0].body).equals(largest));

    // The SDK takes the limit from the link the service attached: no bigger batch is possible.
    await assert.rejects(
      producer.createBatch({ partitionId: "0", maxSizeInBytes: 4 * 1024 * 1024 }),
      /greater than maximum message size \(1048576 bytes\)/,
    );
    await assert.rejects(
      producer.sendBatch([{ body: Buffer.alloc(1536 * 1024) }], { partitionId: "0" }),
      (error) => {
        assert.equal(error.code, "MessageTooLargeError", String(error));
        return true;
      },
    );
    // The link survived: the next send goes through.
    await producer.sendBatch([{ body: "after the refusal" }], { partitionId: "0" });
  });
});

describe("receiving", { timeout: TEST_TIMEOUT }, () => {
  it("keeps order and round-trips bodies and application properties", async () => {
    const sent = [
      { body: "text" },
      { body: { kind: "object", n: 1, nested: { list: [1, "two", null, true] } } },
      { body: Buffer.from([0, 1, 2, 255]) },
      { body: 42 },
      { body: ["array", 2] },
      {
        body: "with properties",
        properties: { text: "envelope", count: 3, flag: true, ratio: 0.5 },
        contentType: "application/json",
        correlationId: "corr-1",
        messageId: "msg-1",
      },
    ];
    const start = (await producer.getPartitionProperties("1")).lastEnqueuedSequenceNumber;
    await producer.sendBatch(sent, { partitionId: "1" });
    const { events } = await receive(consumer, "1", { sequenceNumber: start }, (got) => got.length >= sent.length);
    assert.equal(events.length, sent.length);
    assert.deepEqual(
      events.map((event) => event.sequenceNumber),
      sent.map((_, i) => start + 1 + i),
    );
    assert.equal(events[0].body, "text");
    assert.deepEqual(events[1].body, sent[1].body);
    assert.ok(Buffer.from(events[2].body).equals(sent[2].body));
    assert.equal(events[3].body, 42);
    assert.deepEqual(events[4].body, ["array", 2]);
    const last = events[5];
    assert.deepEqual(last.properties, sent[5].properties);
    assert.equal(last.contentType, "application/json");
    assert.equal(last.correlationId, "corr-1");
    assert.equal(last.messageId, "msg-1");
    assert.equal(typeof last.offset, "string");
    assert.ok(last.enqueuedTimeUtc instanceof Date);
    assert.ok(Math.abs(last.enqueuedTimeUtc.getTime() - Date.now()) < 60_000);
    assert.equal(last.partitionKey, undefined);
    for (let i = 1; i < events.length; i++) {
      assert.ok(Number(events[i].offset) > Number(events[i - 1].offset));
    }
  });

  it("starts where asked: earliest, latest, sequence number, offset, enqueued time", async () => {
    const partition = "1";
    const begin = await consumer.getPartitionProperties(partition);
    for (let i = 0; i < 5; i++) {
      await producer.sendBatch([{ body: `position-${i}` }], { partitionId: partition });
      await sleep(15); // distinct enqueued times
    }
    const { events: five } = await receive(
      consumer,
      partition,
      { sequenceNumber: begin.lastEnqueuedSequenceNumber },
      (got) => got.length >= 5,
    );
    assert.deepEqual(
      five.map((event) => event.body),
      [0, 1, 2, 3, 4].map((i) => `position-${i}`),
    );
    const third = five[2];
    const last = five[4].sequenceNumber;
    const firstSequences = async (position) => {
      const { events, error } = await receive(
        consumer,
        partition,
        position,
        (got) => got.length > 0 && got.at(-1).sequenceNumber >= last,
      );
      assert.equal(error, undefined, String(error));
      return events.map((event) => event.sequenceNumber);
    };
    const upToLast = (from) => Array.from({ length: last - from + 1 }, (_, i) => from + i);
    assert.deepEqual(
      await firstSequences({ sequenceNumber: third.sequenceNumber, isInclusive: true }),
      upToLast(third.sequenceNumber),
    );
    assert.deepEqual(
      await firstSequences({ sequenceNumber: third.sequenceNumber }),
      upToLast(third.sequenceNumber + 1),
    );
    assert.deepEqual(
      await firstSequences({ offset: third.offset, isInclusive: true }),
      upToLast(third.sequenceNumber),
    );
    assert.deepEqual(await firstSequences({ offset: third.offset }), upToLast(third.sequenceNumber + 1));
    assert.deepEqual(
      await firstSequences({ enqueuedOn: third.enqueuedTimeUtc }),
      upToLast(third.sequenceNumber + 1),
    );
    const earliest = await firstSequences(earliestEventPosition);
    assert.equal(earliest[0], (await consumer.getPartitionProperties(partition)).beginningSequenceNumber);

    // Latest: only what is sent after the receiver attached.
    const events = [];
    let subscription;
    await new Promise((resolve, reject) => {
      let sentNew = false;
      subscription = consumer.subscribe(
        partition,
        {
          processEvents: async (batch) => {
            events.push(...batch);
            if (!sentNew) {
              sentNew = true; // the first (empty) batch: the receiver is attached
              await producer.sendBatch([{ body: "after-latest" }], { partitionId: partition });
            } else if (events.length > 0) {
              resolve();
            }
          },
          processError: async (error) => reject(error),
        },
        { startPosition: latestEventPosition, maxWaitTimeInSeconds: 1 },
      );
    });
    await subscription.close();
    assert.deepEqual(
      events.map((event) => event.body),
      ["after-latest"],
    );
  });
});

describe("checkpoints and load balancing", { timeout: 120_000 }, () => {
  it("two consumers share the partitions; a restart resumes after the checkpoints", async () => {
    const container = new ContainerClient(STORAGE, `conformance-${randomUUID()}`);
    await container.create();
    try {
      const store = new BlobCheckpointStore(container);
      const start = await lastSequences(producer, partitionIds);
      const startPosition = Object.fromEntries(
        partitionIds.map((id) => [id, { sequenceNumber: start[id] }]),
      );
      const options = {
        loadBalancingOptions: {
          strategy: "balanced",
          updateIntervalInMs: 500,
          partitionOwnershipExpirationIntervalInMs: 5_000,
        },
      };
      const received = { a: [], b: [], restarted: [] };
      const handlers = (name) => ({
        processEvents: async (events, context) => {
          received[name].push(...events.map((event) => [context.partitionId, event.body]));
          if (events.length > 0) await context.updateCheckpoint(events.at(-1));
        },
        processError: async () => {}, // ownership moves while balancing: expected
      });
      const clients = {
        a: new EventHubConsumerClient(GROUP, CONNECTION, HUB, store, options),
        b: new EventHubConsumerClient(GROUP, CONNECTION, HUB, store, options),
      };
      const subscriptions = [
        clients.a.subscribe(handlers("a"), { startPosition, maxWaitTimeInSeconds: 1 }),
        clients.b.subscribe(handlers("b"), { startPosition, maxWaitTimeInSeconds: 1 }),
      ];
      // Wait until the two hold every partition between them, each at least one.
      const deadline = Date.now() + 30_000;
      let owners = new Map();
      while (Date.now() < deadline) {
        const ownerships = await store.listOwnership(consumer.fullyQualifiedNamespace, HUB, GROUP);
        owners = new Map(ownerships.map((o) => [o.partitionId, o.ownerId]));
        if (owners.size === partitionIds.length && new Set(owners.values()).size === 2) break;
        await sleep(250);
      }
      assert.equal(new Set(owners.values()).size, 2, `ownership: ${JSON.stringify([...owners])}`);

      const tag = randomUUID();
      const batchOne = [];
      for (const id of partitionIds) {
        const bodies = [0, 1, 2].map((i) => `${tag}:first:${id}:${i}`);
        batchOne.push(...bodies.map((body) => [id, body]));
        await producer.sendBatch(bodies.map((body) => ({ body })), { partitionId: id });
      }
      const mine = (name) => received[name].filter(([, body]) => String(body).startsWith(tag));
      const until = Date.now() + 20_000;
      while (mine("a").length + mine("b").length < batchOne.length && Date.now() < until) {
        await sleep(100);
      }
      await Promise.all(subscriptions.map((subscription) => subscription.close()));
      await Promise.all(Object.values(clients).map((client) => client.close()));
      assert.deepEqual([...mine("a"), ...mine("b")].sort(), [...batchOne].sort());
      assert.ok(mine("a").length > 0 && mine("b").length > 0, "both consumers processed events");

      const checkpoints = await store.listCheckpoints(consumer.fullyQualifiedNamespace, HUB, GROUP);
      const checkpointed = Object.fromEntries(checkpoints.map((c) => [c.partitionId, c.sequenceNumber]));
      for (const id of partitionIds) {
        assert.equal(checkpointed[id], start[id] + 3, `checkpoint of partition ${id}`);
      }

      // A restart resumes after the checkpoints: none of the first events again, all new ones.
      const batchTwo = [];
      for (const id of partitionIds) {
        const body = `${tag}:second:${id}`;
        batchTwo.push([id, body]);
        await producer.sendBatch([{ body }], { partitionId: id });
      }
      const restarted = new EventHubConsumerClient(GROUP, CONNECTION, HUB, store, options);
      const subscription = restarted.subscribe(handlers("restarted"), {
        startPosition: earliestEventPosition, // ignored: checkpoints win
        maxWaitTimeInSeconds: 1,
      });
      const restartDeadline = Date.now() + 30_000;
      while (received.restarted.length < batchTwo.length && Date.now() < restartDeadline) {
        await sleep(100);
      }
      await sleep(500); // anything more would be a re-delivery
      await subscription.close();
      await restarted.close();
      assert.deepEqual([...received.restarted].sort(), [...batchTwo].sort());
    } finally {
      await container.delete();
    }
  });
});

describe("owner levels", { timeout: TEST_TIMEOUT }, () => {
  it("a higher owner level takes the partition; lower and none are refused", async () => {
    const clients = [0, 1, 2, 3].map(() => new EventHubConsumerClient(GROUP, CONNECTION, HUB, NO_RETRY));
    const errors = [[], [], [], []];
    const subscribe = (index, ownerLevel) =>
      clients[index].subscribe(
        "0",
        {
          processEvents: async () => {},
          processError: async (error) => {
            errors[index].push(error);
          },
        },
        { startPosition: latestEventPosition, maxWaitTimeInSeconds: 1, ...(ownerLevel === undefined ? {} : { ownerLevel }) },
      );
    const waitFor = async (index) => {
      const deadline = Date.now() + 15_000;
      while (errors[index].length === 0 && Date.now() < deadline) await sleep(50);
      assert.ok(errors[index].length > 0, `client ${index} got no error`);
      return errors[index][0];
    };
    const subscriptions = [subscribe(0, 1)];
    try {
      await sleep(1_500); // attached
      subscriptions.push(subscribe(1, 2));
      const stolen = await waitFor(0);
      assert.equal(stolen.code, "ReceiverDisconnectedError", String(stolen));
      subscriptions.push(subscribe(2, 1));
      const lower = await waitFor(2);
      assert.equal(lower.code, "ReceiverDisconnectedError", String(lower));
      subscriptions.push(subscribe(3, undefined));
      const none = await waitFor(3);
      assert.equal(none.code, "ReceiverDisconnectedError", String(none));
      assert.deepEqual(errors[1], [], "the owner keeps the partition");
    } finally {
      await Promise.all(subscriptions.map((subscription) => subscription.close()));
      await Promise.all(clients.map((client) => client.close()));
    }
  });
});

describe("errors carry the service's conditions", { timeout: TEST_TIMEOUT }, () => {
  for (const bad of ["99", "boo"]) {
    it(`partition '${bad}': properties, send and receive are ArgumentOutOfRangeError`, async () => {
      const strict = new EventHubProducerClient(CONNECTION, HUB, NO_RETRY);
      const strictConsumer = new EventHubConsumerClient(GROUP, CONNECTION, HUB, NO_RETRY);
      try {
        await assert.rejects(strict.getPartitionProperties(bad), { code: "ArgumentOutOfRangeError" });
        await assert.rejects(strictConsumer.getPartitionProperties(bad), {
          code: "ArgumentOutOfRangeError",
        });
        await assert.rejects(strict.sendBatch([{ body: "x" }], { partitionId: bad }), {
          code: "ArgumentOutOfRangeError",
        });
        const error = await receiveError(strictConsumer, bad, { startPosition: earliestEventPosition });
        assert.equal(error.code, "ArgumentOutOfRangeError", String(error));
      } finally {
        await strict.close();
        await strictConsumer.close();
      }
    });
  }

  it("a start past the last event is ArgumentError", async () => {
    const strictConsumer = new EventHubConsumerClient(GROUP, CONNECTION, HUB, NO_RETRY);
    try {
      const last = await strictConsumer.getPartitionProperties("0");
      for (const startPosition of [
        { sequenceNumber: last.lastEnqueuedSequenceNumber + 5 },
        { offset: String(Number(last.lastEnqueuedOffset) + 1_000_000) },
      ]) {
        const error = await receiveError(strictConsumer, "0", { startPosition });
        assert.equal(error.code, "ArgumentError", `${JSON.stringify(startPosition)}: ${error}`);
      }
    } finally {
      await strictConsumer.close();
    }
  });

  it("an unknown consumer group or hub is MessagingEntityNotFoundError", async () => {
    const lost = new EventHubConsumerClient(`no-such-group-${randomUUID()}`, CONNECTION, HUB, NO_RETRY);
    const missing = new EventHubProducerClient(CONNECTION, `no-such-hub-${randomUUID()}`, NO_RETRY);
    try {
      const error = await receiveError(lost, "0", { startPosition: earliestEventPosition });
      assert.equal(error.code, "MessagingEntityNotFoundError", String(error));
      await assert.rejects(missing.getEventHubProperties(), { code: "MessagingEntityNotFoundError" });
    } finally {
      await lost.close();
      await missing.close();
    }
  });

  it("a wrong key, an unknown key name and an expired token are UnauthorizedError", async () => {
    const keyName = field(CONNECTION, "SharedAccessKeyName");
    const key = field(CONNECTION, "SharedAccessKey");
    const endpoint = field(CONNECTION, "Endpoint").replace(/\/$/, "");
    const expired = sharedAccessSignature(`${endpoint}/${HUB}`, keyName, key, Math.floor(Date.now() / 1000) - 60);
    const bad = {
      "wrong key": withField(CONNECTION, "SharedAccessKey", Buffer.from("not the key").toString("base64")),
      "unknown key name": withField(CONNECTION, "SharedAccessKeyName", `nobody-${randomUUID()}`),
      "expired token": withToken(expired),
    };
    for (const [what, connectionString] of Object.entries(bad)) {
      const client = new EventHubProducerClient(connectionString, HUB, NO_RETRY);
      try {
        await assert.rejects(client.getEventHubProperties(), (error) => {
          assert.equal(error.code, "UnauthorizedError", `${what}: ${error}`);
          return true;
        });
        await assert.rejects(client.sendBatch([{ body: "refused" }], { partitionId: "0" }), (error) => {
          assert.equal(error.code, "UnauthorizedError", `${what}: ${error}`);
          return true;
        });
      } finally {
        await client.close();
      }
    }
    // The right key, as a token, is accepted.
    const fresh = sharedAccessSignature(`${endpoint}/${HUB}`, keyName, key, Math.floor(Date.now() / 1000) + 600);
    const client = new EventHubProducerClient(withToken(fresh), HUB, NO_RETRY);
    try {
      assert.equal((await client.getEventHubProperties()).name, HUB);
    } finally {
      await client.close();
    }
  });
});
