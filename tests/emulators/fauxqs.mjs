// Starts the fauxqs SQS emulator on 127.0.0.1 only (its own CLI listens on every interface).
// Usage: FAUXQS_PORT=PORT node tests/emulators/fauxqs.mjs
// Queue URLs are then http://127.0.0.1:PORT/000000000000/NAME, the form Conveyor builds from the endpoint.
import { buildApp } from "./node_modules/fauxqs/dist/app.js";

const port = Number.parseInt(process.env.FAUXQS_PORT ?? "4566", 10);
const app = buildApp({ logger: false });
await app.listen({ port, host: "127.0.0.1" });
console.log(`fauxqs listening on http://127.0.0.1:${port}`);

for (const signal of ["SIGTERM", "SIGINT"]) {
  process.on(signal, async () => {
    await app.close();
    process.exit(0);
  });
}
