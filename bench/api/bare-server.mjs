// Baseline for the API bench: a bare Fastify route, in its own process like the API.
import Fastify from "fastify";

const app = Fastify({ logger: false });
app.get("/bare", async () => ({ success: true, isValid: true }));
await app.listen({ host: "127.0.0.1", port: Number(process.env.PORT) });
process.stdout.write("ready\n");
