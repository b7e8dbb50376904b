import type { AnchorHTMLAttributes, ComponentChildren } from "preact";
import { useEffect, useState } from "preact/hooks";

const listeners = new Set<() => void>();
let navigated = false;

/** True once the visitor moved inside the portal: only then does a new page take the focus (a first load starts at the top). */
export const hasNavigated = () => navigated;

/** Goes to a portal path without reloading the page. */
export function navigate(to: string, options: { replace?: boolean } = {}): void {
  navigated = true;
  if (options.replace) history.replaceState(null, "", to);
  else history.pushState(null, "", to);
  for (const listener of listeners) listener();
  window.scrollTo(0, 0);
}

/** The current path; re-renders on navigation and on back/forward. */
export function usePath(): string {
  const [path, setPath] = useState(location.pathname);
  useEffect(() => {
    const update = () => setPath(location.pathname);
    const onPopState = () => {
      navigated = true;
      update();
    };
    listeners.add(update);
    addEventListener("popstate", onPopState);
    return () => {
      listeners.delete(update);
      removeEventListener("popstate", onPopState);
    };
  }, []);
  return path;
}

/** An ordinary link that navigates inside the portal; modified clicks (new tab) keep the browser's behaviour. */
export function Link(props: { href: string; children: ComponentChildren } & AnchorHTMLAttributes<HTMLAnchorElement>) {
  const { href, children, ...rest } = props;
  const onClick = (event: MouseEvent) => {
    if (event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
    event.preventDefault();
    navigate(href);
  };
  return (
    <a href={href} onClick={onClick} {...rest}>
      {children}
    </a>
  );
}
