import { usePageTitle } from "./components/ui.js";
import { AccountPage } from "./pages/account.js";
import { AdminPage } from "./pages/admin.js";
import { ConsolePage } from "./pages/console.js";
import { ProtectPage } from "./pages/protect.js";
import { AuthVerifyPage, SignInPage } from "./pages/sign-in.js";
import { StatusPage } from "./pages/status.js";
import { VerificationPage, VerifyPage } from "./pages/verify.js";
import { Link, usePath } from "./router.js";
import { useUser } from "./session.js";

/** The page for a path: the same list the API answers index.html for (api `portal/portal-routes.ts`). */
function page(path: string) {
  if (path === "/" || path === "/protect") return <ProtectPage />;
  if (path === "/verify") return <VerifyPage />;
  if (path.startsWith("/verify/")) return <VerificationPage hash={path.slice("/verify/".length)} />;
  if (path === "/status") return <StatusPage />;
  if (path === "/sign-in") return <SignInPage />;
  if (path === "/auth/verify") return <AuthVerifyPage />;
  if (path === "/account") return <AccountPage />;
  if (path === "/console") return <ConsolePage />;
  if (path === "/admin") return <AdminPage />;
  return <NotFound />;
}

function NotFound() {
  usePageTitle("Page not found");
  return (
    <>
      <h1 tabIndex={-1}>Page not found</h1>
      <p>
        There is no such page. <Link href="/">Protect a work</Link> or <Link href="/verify">verify one</Link>.
      </p>
    </>
  );
}

export function App() {
  const path = usePath();
  const user = useUser();
  const links = [
    { href: "/", label: "Protect", active: path === "/" || path === "/protect" },
    { href: "/verify", label: "Verify", active: path.startsWith("/verify") },
    { href: "/status", label: "Status", active: path === "/status" },
    user
      ? { href: "/account", label: "My works", active: path === "/account" }
      : { href: "/sign-in", label: "Sign in", active: path === "/sign-in" || path === "/auth/verify" },
    { href: "/console", label: "Platforms", active: path === "/console" },
    ...(user?.role === "admin" ? [{ href: "/admin", label: "Admin", active: path === "/admin" }] : []),
  ];
  return (
    <>
      <a class="skip-link" href="#content">
        Skip to content
      </a>
      <header class="site-header">
        <Link href="/" class="brand" aria-label="DAON home">
          <img src="/favicon.svg" alt="" width={28} height={28} />
          <span>DAON</span>
        </Link>
        <nav aria-label="Main">
          <ul>
            {links.map((link) => (
              <li key={link.href}>
                <Link href={link.href} aria-current={link.active ? "page" : undefined}>
                  {link.label}
                </Link>
              </li>
            ))}
          </ul>
        </nav>
      </header>
      <main id="content">{page(path)}</main>
      <footer class="site-footer">
        <p>
          DAON registers creative work on an append-only ledger. Only hashes and terms go on the ledger.{" "}
          <a href="/docs">API documentation</a>
        </p>
      </footer>
    </>
  );
}
