// A responder system's consumer of Muster's escalations, built from the published contract
// alone: asyncapi.yaml says which topic carries an agency's escalations in a mode, and the key,
// headers and payload schemas of each message; schemas/ holds those schemas. See docs/partners.md.
//
//   npm ci && AGENCY=fire MODE=live node consumer.js
//
// One JSON line per record on stdout: {"action": "handled" | "duplicate" | "skipped" | "rejected", ...}.
// Settings (environment, named as Muster's own): MUSTER_KAFKA_BOOTSTRAP (127.0.0.1:9092),
// MUSTER_KAFKA_SECURITY_PROTOCOL (PLAINTEXT | SSL | SASL_PLAINTEXT | SASL_SSL), MUSTER_KAFKA_SASL_MECHANISM
// (SCRAM-SHA-512), MUSTER_KAFKA_SASL_USERNAME, MUSTER_KAFKA_SASL_PASSWORD, MUSTER_KAFKA_SSL_CAFILE,
// MUSTER_TOPIC_PREFIX (""); AGENCY (fire), MODE (live | exercise), GROUP_ID (<prefix>partner-<agency>.responder: a partner's groups begin `partner-<agency>.`),
// CONTRACT_DIR (the folder of asyncapi.yaml), FROM_BEGINNING (true: a new group starts at the oldest
// retained record), STOP_AFTER (stop after so many records; 0 runs until SIGINT/SIGTERM).

import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import Ajv2020 from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { Kafka, logLevel } from 'kafkajs';
import YAML from 'yaml';

const here = path.dirname(fileURLToPath(import.meta.url));
const env = process.env;
const contractDir = path.resolve(env.CONTRACT_DIR || path.join(here, '..', '..'));
const agency = env.AGENCY || 'fire';
const mode = env.MODE || 'live';
const stopAfter = Number(env.STOP_AFTER || 0);

// --- the contract -----------------------------------------------------------------------------
const spec = YAML.parse(readFileSync(path.join(contractDir, 'asyncapi.yaml'), 'utf8'));
const ajv = new Ajv2020({ allErrors: true, strict: false });
addFormats(ajv);
const schemaCache = new Map();
function schema(ref) { // "./schemas/X.json" relative to asyncapi.yaml
  if (!schemaCache.has(ref)) {
    const doc = JSON.parse(readFileSync(path.join(contractDir, ref), 'utf8'));
    schemaCache.set(ref, ajv.compile(doc));
  }
  return schemaCache.get(ref);
}

const [channelId, channel] = Object.entries(spec.channels)
  .find(([, c]) => c['x-muster-agency'] === agency && c['x-muster-mode'] === mode) || [];
if (!channel) {
  throw new Error(`the contract has no ${mode} escalation channel for agency ${agency}`);
}
const topic = (env.MUSTER_TOPIC_PREFIX || '') + channel.address;
const keyField = channel['x-muster-key'];

// (event_type, schema_version) -> how to read it; the highest version known per event type.
const known = new Map();
const highest = new Map();
for (const ref of Object.values(channel.messages)) {
  const message = spec.components.messages[ref.$ref.split('/').pop()];
  const eventType = message.headers.properties.event_type.const;
  const version = Number(message.headers.properties.schema_version.const);
  known.set(`${eventType}/${version}`, {
    headers: ajv.compile(message.headers),
    key: schema(message.bindings.kafka.key.$ref),
    payload: schema(message.payload.$ref),
  });
  highest.set(eventType, Math.max(highest.get(eventType) || 0, version));
}

// --- reading ----------------------------------------------------------------------------------
const seen = new Set(); // event_ids handled; a real system keeps them with its own records
let count = 0;

function out(line) {
  process.stdout.write(JSON.stringify(line) + '\n');
}

function handle({ partition, message }) {
  const where = { topic, partition, offset: message.offset };
  const headers = Object.fromEntries(
    Object.entries(message.headers || {}).map(([k, v]) => [k, Buffer.isBuffer(v) ? v.toString('utf8') : String(v)]),
  );
  const eventType = headers.event_type;
  const version = Number(headers.schema_version);
  const newer = headers.newer_schema_version;
  if (newer !== undefined && Number(newer) <= (highest.get(eventType) || 0)) {
    return out({ action: 'skipped', reason: `older copy of a version-${newer} record`, event_type: eventType, ...where });
  }
  const reader = known.get(`${eventType}/${version}`);
  if (!reader) { // a version introduced after this consumer was built: skip, count, alert; never stop
    return out({ action: 'skipped', reason: 'unknown event_type or schema_version', event_type: eventType,
      schema_version: headers.schema_version, ...where });
  }
  let event;
  try {
    event = JSON.parse(message.value.toString('utf8'));
  } catch (error) {
    return out({ action: 'rejected', reason: `value is not JSON: ${error.message}`, ...where });
  }
  const key = message.key === null ? null : message.key.toString('utf8');
  const problems = [];
  if (!reader.headers(headers)) problems.push(...reader.headers.errors.map((e) => `headers${e.instancePath} ${e.message}`));
  if (!reader.key(key)) problems.push(...reader.key.errors.map((e) => `key ${e.message}`));
  if (!reader.payload(event)) problems.push(...reader.payload.errors.map((e) => `value${e.instancePath} ${e.message}`));
  if (problems.length === 0 && event[keyField] !== key) problems.push(`key differs from the value's ${keyField}`);
  if (problems.length > 0) { // a real system parks the record and alerts its operators
    return out({ action: 'rejected', reason: problems.join('; '), event_id: event.event_id, ...where });
  }
  if (seen.has(event.event_id)) { // a replay, a restart, or the same fact twice: one event
    return out({ action: 'duplicate', event_id: event.event_id, event_type: eventType, ...where });
  }
  seen.add(event.event_id);
  out({
    action: 'handled', event_id: event.event_id, event_type: eventType, schema_version: version,
    incident_id: event.incident_id, mode: event.mode, classification: event.classification,
    level: event.level ?? null, levels: event.levels ?? null, agencies: event.agencies, ...where,
  });
}

// --- Kafka ------------------------------------------------------------------------------------
// The production server: SASL_SSL with SCRAM-SHA-512 (asyncapi.yaml); the local one: PLAINTEXT.
const protocol = env.MUSTER_KAFKA_SECURITY_PROTOCOL || 'PLAINTEXT';
const sasl = protocol.startsWith('SASL_')
  ? {
    mechanism: (env.MUSTER_KAFKA_SASL_MECHANISM || 'SCRAM-SHA-512').toLowerCase(),
    username: env.MUSTER_KAFKA_SASL_USERNAME,
    password: env.MUSTER_KAFKA_SASL_PASSWORD,
  }
  : undefined;
const tls = protocol === 'SSL' || protocol === 'SASL_SSL';
const kafka = new Kafka({
  clientId: `${agency}-responder`,
  brokers: (env.MUSTER_KAFKA_BOOTSTRAP || '127.0.0.1:9092').split(','),
  ssl: tls ? (env.MUSTER_KAFKA_SSL_CAFILE ? { ca: [readFileSync(env.MUSTER_KAFKA_SSL_CAFILE, 'utf8')] } : true) : undefined,
  sasl,
  logLevel: logLevel.ERROR,
  logCreator: () => ({ log }) => process.stderr.write(JSON.stringify(log) + '\n'),
});
const groupId = env.GROUP_ID || `${env.MUSTER_TOPIC_PREFIX || ''}partner-${agency}.responder`;
const consumer = kafka.consumer({ groupId });

async function stop() {
  await consumer.disconnect();
  process.exit(0);
}
process.on('SIGINT', stop);
process.on('SIGTERM', stop);

process.stderr.write(`reading ${topic} (channel ${channelId}) as group ${groupId}\n`);
await consumer.connect();
await consumer.subscribe({ topic, fromBeginning: (env.FROM_BEGINNING || 'true') === 'true' });
await consumer.run({
  // One record at a time per partition, in order: every record of one incident is on one partition.
  // The offset is committed only after the record is handled (at least once: hence de-duplication).
  eachMessage: async (record) => {
    handle(record);
    count += 1;
    if (stopAfter > 0 && count >= stopAfter) setImmediate(stop);
  },
});
