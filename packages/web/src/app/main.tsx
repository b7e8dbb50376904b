import { render } from "preact";
import { App } from "./app.js";
import "./styles.css";

const root = document.getElementById("app")!;
root.textContent = ""; // the "loading" note of index.html
render(<App />, root);
