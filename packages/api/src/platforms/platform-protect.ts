import type { FastifyRequest } from "fastify";
import { requirePlatform } from "../auth/caller.js";
import { validationError } from "../http/errors.js";
import type { RegistrationRow } from "../registrations/registration.js";
import { USERNAME } from "./platform.js";
import { platformRequest } from "./platform-requests.js";
import type { PlatformUsers } from "./platform-users.js";

/** Who a protect request registers for: a platform and, when it names one, its user's owner id. */
export interface ProtectOwner {
  platform: string;
  ownerId: string | null;
  /** Fields the platform's answer adds (`ownerIdentity`, `broker`). */
  describe(row: RegistrationRow): Promise<Record<string, unknown>>;
}

/**
 * Protect with a platform key (api.md §2.2 callers, §4 `broker/protect`): scope
 * `broker:register`, platform = its domain, owner = `username@domain`'s owner id (none
 * without `username`; `broker/protect` requires it). Other callers get undefined here, and
 * may not name a user.
 */
export function platformProtectOwner(users: PlatformUsers) {
  return async (request: FastifyRequest, username: string | undefined, broker: boolean): Promise<ProtectOwner | undefined> => {
    if (request.caller.kind !== "platform") {
      if (broker) requirePlatform(request, "broker:register");
      if (username !== undefined) throw validationError([{ field: "username", message: "only a platform key may name a user" }]);
      return undefined;
    }
    const caller = requirePlatform(request, "broker:register");
    if (username === undefined && broker) throw validationError([{ field: "username", message: "is required" }]);
    if (username !== undefined && !USERNAME.test(username)) {
      throw validationError([{ field: "username", message: "must be 1 to 255 of A-Z, a-z, 0-9, _ and -" }]);
    }
    const ownerId = username === undefined ? null : await users.ownerOf(caller.platformId, username);
    const { platform } = platformRequest(request);
    return {
      platform: caller.domain,
      ownerId,
      async describe(row) {
        const name =
          row.owner_id === ownerId && username !== undefined ? username : await users.usernameOf(caller.platformId, row.owner_id);
        return {
          ownerIdentity: name ? `${name}@${caller.domain}` : null,
          broker: { id: platform.id, domain: platform.domain, name: platform.name },
        };
      },
    };
  };
}
