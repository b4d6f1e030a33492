// Prints a `Stripe-Signature` header for a webhook payload, made by Stripe's own library
// (`stripe.webhooks.generateTestHeaderString`), so Tenantry's verifier is tested against
// what Stripe signs rather than against our reading of Stripe's documentation.
//
//   node sign.mjs --secret whsec_... [--timestamp UNIX_SECONDS] [--payload-file PATH] < body
//
// The payload is the file's bytes, or stdin's when no file is given. The header goes to
// stdout as one line; bad arguments exit with code 2.
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import Stripe from 'stripe';

function usage(message) {
  process.stderr.write(`sign.mjs: ${message}\n`);
  process.stderr.write('usage: node sign.mjs --secret whsec_... [--timestamp UNIX] [--payload-file PATH]\n');
  process.exit(2);
}

let values;
try {
  ({ values } = parseArgs({
    options: {
      secret: { type: 'string' },
      timestamp: { type: 'string' },
      'payload-file': { type: 'string' },
    },
    strict: true,
  }));
} catch (e) {
  usage(e.message);
}
if (!values.secret) usage('--secret is required');

let timestamp;
if (values.timestamp !== undefined) {
  if (!/^\d+$/.test(values.timestamp)) usage('--timestamp must be whole seconds since the epoch');
  timestamp = Number(values.timestamp);
}

// Fd 0 is stdin: read whole, as the raw body Stripe would send.
const payload = readFileSync(values['payload-file'] ?? 0, 'utf8');

// The key is never used to call Stripe: signing happens locally.
const stripe = new Stripe('sk_test_unused');
const header = stripe.webhooks.generateTestHeaderString({
  payload,
  secret: values.secret,
  timestamp,
});
process.stdout.write(`${header}\n`);
