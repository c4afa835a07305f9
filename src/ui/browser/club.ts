/** The club's page (relay): filled in by the relay's ui routes. */
export {};
