"""Analysis workspaces that travel to a job and back: the built-in directory workspace
(a folder of plain files and its value encoding) and SpikeLab's AnalysisWorkspace, each
behind the WorkspaceCodec port."""
