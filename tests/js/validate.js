// Validates SNS documents with the npm package sns-validator (tests/unit/
// test_sns_validator_js.py). Reads one JSON object on stdin:
//   {"hostPattern": "<regexp source>", "certPem": "<PEM>", "documents": [...]}
// and prints one JSON array, one entry per document, in order:
//   {"valid": bool, "error": string|null, "awsAlgorithm": bool}
// `valid`/`error` are sns-validator's verdict (it fetches SigningCertURL over
// HTTPS itself; NODE_EXTRA_CA_CERTS must trust the test server). `awsAlgorithm`
// is Node's own crypto checking the signature over the string to sign exactly as
// AWS documents it, with certPem: a second opinion where sns-validator's key
// lists differ from AWS's (it signs UnsubscribeConfirmation like a notification).
"use strict";

const crypto = require("crypto");
const MessageValidator = require("sns-validator");

const NOTIFICATION = ["Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"];
const CONFIRMATION = ["Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"];

function awsAlgorithm(doc, certPem) {
  const keys = doc.Type === "Notification" ? NOTIFICATION : CONFIRMATION;
  const algorithm = { "1": "RSA-SHA1", "2": "RSA-SHA256" }[doc.SignatureVersion];
  if (!algorithm) return false;
  const verifier = crypto.createVerify(algorithm);
  for (const key of keys) {
    if (key in doc) verifier.update(key + "\n" + doc[key] + "\n", "utf8");
  }
  return verifier.verify(certPem, doc.Signature, "base64");
}

function validate(validator, doc) {
  return new Promise((resolve) => {
    validator.validate(doc, (err) => resolve(err ? String(err.message || err) : null));
  });
}

async function main() {
  const chunks = [];
  for await (const chunk of process.stdin) chunks.push(chunk);
  const input = JSON.parse(Buffer.concat(chunks).toString("utf8"));
  const validator = new MessageValidator(new RegExp(input.hostPattern), "utf8");
  const results = [];
  for (const doc of input.documents) {
    // sns-validator may add keys to the object it is given: hand it a copy.
    const error = await validate(validator, JSON.parse(JSON.stringify(doc)));
    results.push({ valid: error === null, error, awsAlgorithm: awsAlgorithm(doc, input.certPem) });
  }
  process.stdout.write(JSON.stringify(results));
}

main().catch((err) => {
  process.stderr.write(String((err && err.stack) || err) + "\n");
  process.exit(1);
});
