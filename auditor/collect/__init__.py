"""Live collection: read Azure through its SDKs and write the same snapshot a person exports.

`live.collect` is the one entry point; `clouds` knows each cloud's endpoints and token audiences,
`credentials` signs in, `resource_graph` runs paged, batched, throttled Resource Graph queries.
"""
