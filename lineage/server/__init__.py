"""The lineage server: one ASGI app (:mod:`.app`) with the GraphQL API (:mod:`.graphql`), blob
transfer, the dashboard (:mod:`.dashboard`) and tokens (:mod:`.auth`), served by uvicorn
(:mod:`.serving`)."""
